package projection

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
)

// ErrCheckpointMoved is returned when a projection's checkpoint is no longer
// where this Runner left it: another projector instance applied the batch.
// Nothing of the batch was written; the Runner stops being active.
var ErrCheckpointMoved = errors.New("projection checkpoint was moved by another projector instance")

// ErrInconsistent is matched (errors.Is) by every error that means the events
// or the read tables are not what the projections can safely fold: a gap or
// reordering in a stream, a stream not starting with AccountOpened, a read row
// that does not fit. The Runner stops on it rather than skip or guess.
var ErrInconsistent = errors.New("events and read tables are inconsistent")

// ContiguityError is an event that does not follow the version its projection
// holds for the stream: the projector would skip or reorder events by applying it.
type ContiguityError struct {
	Projection string
	StreamID   uuid.UUID
	// Have is the stream's version already applied (0: none); Got the version
	// that arrived, which should have been Have+1.
	Have, Got int
	Position  eventlog.Position
}

func (e *ContiguityError) Error() string {
	return fmt.Sprintf("projection %s: stream %s: version %d arrived (at %s) after version %d, expected version %d; "+
		"stopping rather than skip or reorder events", e.Projection, e.StreamID, e.Got, e.Position, e.Have, e.Have+1)
}

// Is makes errors.Is(err, ErrInconsistent) true.
func (e *ContiguityError) Is(target error) bool { return target == ErrInconsistent }

// checkFirst refuses a stream whose first event is not AccountOpened.
func checkFirst(have int, e eventlog.RecordedEvent) error {
	if have != 0 {
		return nil
	}
	if _, ok := e.Event.(domain.AccountOpened); ok {
		return nil
	}
	return fmt.Errorf("%w: stream %s starts with %s (version %d at %s), not %s",
		ErrInconsistent, e.StreamID, e.EventType, e.Version, eventlog.PositionOf(e), domain.TypeAccountOpened)
}

// isFatal reports errors that retrying cannot cure: the Runner returns them.
func isFatal(err error) bool {
	var up *eventlog.UpcastError
	return errors.Is(err, ErrInconsistent) || errors.Is(err, eventlog.ErrRebuildRequired) || errors.As(err, &up)
}
