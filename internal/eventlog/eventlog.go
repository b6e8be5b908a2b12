// Package eventlog is the read side's view of the event store: recorded
// events, their place in the gap-safe global order, and the tailing reader
// that projections consume. internal/store implements it over PostgreSQL;
// projections and transports depend on this package, not on the adapter.
package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// RecordedEvent is one stored event, its data upcast to the current shape.
type RecordedEvent struct {
	GlobalPosition int64
	TransactionID  uint64
	StreamID       uuid.UUID
	Version        int
	EventID        uuid.UUID
	EventType      string
	SchemaVersion  int
	// Data is the current (v2) shape; Event the same, decoded.
	Data       json.RawMessage
	Event      domain.Event
	Metadata   json.RawMessage
	RecordedAt time.Time
}

// UpcastError is a stored event that cannot be read: it names the event's place.
type UpcastError struct {
	GlobalPosition int64
	StreamID       uuid.UUID
	Version        int
	Err            error
}

func (e *UpcastError) Error() string {
	return fmt.Sprintf("event at global position %d (stream %s version %d) cannot be read: %v", e.GlobalPosition, e.StreamID, e.Version, e.Err)
}

func (e *UpcastError) Unwrap() error { return e.Err }

// Position is a place in the gap-safe global order of the event store: the
// transaction that wrote an event, then its global position. A reader that
// checkpoints the pair never skips an event that commits late (DESIGN §4).
// The zero Position is before every event.
type Position struct {
	TransactionID  uint64
	GlobalPosition int64
}

// PositionOf returns the position of e.
func PositionOf(e RecordedEvent) Position {
	return Position{TransactionID: e.TransactionID, GlobalPosition: e.GlobalPosition}
}

// Less reports whether p comes before q.
func (p Position) Less(q Position) bool {
	if p.TransactionID != q.TransactionID {
		return p.TransactionID < q.TransactionID
	}
	return p.GlobalPosition < q.GlobalPosition
}

// IsZero reports whether p is the start, before every event.
func (p Position) IsZero() bool { return p == Position{} }

func (p Position) String() string {
	return "tx " + strconv.FormatUint(p.TransactionID, 10) + " position " + strconv.FormatInt(p.GlobalPosition, 10)
}

// Head is the newest event visible to a read: the highest global position and
// when it was recorded. Both are zero for an empty store.
type Head struct {
	GlobalPosition int64
	RecordedAt     time.Time
}

// TailBatch is one read of the tailing reader.
type TailBatch struct {
	// Events follow the position read after, in (transaction id, global position)
	// order, upcast to the current shape. Every event below Xmin is in it or before
	// it, so nothing can commit later in the part of the order it covers.
	Events []RecordedEvent
	// Head is the newest committed event, readable yet or not; lag is measured against it.
	Head Head
	// Xmin is the oldest transaction still running when the read was made: the
	// reader does not go past it. It is cluster-wide, so a long transaction in any
	// database of the server holds every reader back.
	Xmin uint64
	// HeldBack reports committed events at or above Xmin: they wait for an older
	// transaction to end. A reader held back for long points at a long transaction.
	HeldBack bool
}

// ErrRebuildRequired is matched (errors.Is) by a CheckpointAheadError: the read
// model cannot be brought up to date by tailing and must be rebuilt.
var ErrRebuildRequired = errors.New("the read model must be rebuilt from the event store: run `projector rebuild`")

// CheckpointAheadError reports transaction ids from another cluster: after a
// dump and restore into a new cluster, transaction ids start again, below the
// ones a checkpoint (or the restored events) carry. Waiting would never end, or
// worse, skip every event written until the counter catches up.
type CheckpointAheadError struct {
	// Checkpoint is the position the reader was asked to read after.
	Checkpoint Position
	// NextTransactionID is the server's first unassigned transaction id.
	NextTransactionID uint64
	// EventTransactionID, when not zero, is the highest transaction id stored
	// in events, at or above NextTransactionID.
	EventTransactionID uint64
}

func (e *CheckpointAheadError) Error() string {
	if e.EventTransactionID != 0 {
		return fmt.Sprintf("the events table holds transaction ids up to %d but the server has only reached %d: "+
			"the event store was restored into another cluster (dump/restore), so the transaction-id order the tailing reader relies on is broken; "+
			"advance the server's transaction id past %d (pg_resetwal --next-transaction-id/--epoch while it is stopped), then run `projector rebuild`",
			e.EventTransactionID, e.NextTransactionID, e.EventTransactionID)
	}
	return fmt.Sprintf("checkpoint (%s) is ahead of the server's next transaction id %d: "+
		"the event store was restored into another cluster (dump/restore) and transaction ids started again; "+
		"tailing from this checkpoint would skip events, so run `projector rebuild`",
		e.Checkpoint, e.NextTransactionID)
}

// Is makes errors.Is(err, ErrRebuildRequired) true.
func (e *CheckpointAheadError) Is(target error) bool { return target == ErrRebuildRequired }

// HoldingTransaction describes a session whose transaction holds the tailing
// reader back, for a log line that lets an operator find it.
type HoldingTransaction struct {
	PID             int
	Database        string
	ApplicationName string
	State           string
	TransactionAge  time.Duration
	Query           string
}

// Tailer reads the event log in the gap-safe global order (DESIGN §4).
// store.Tailer is the PostgreSQL implementation.
type Tailer interface {
	// Read returns up to limit events after the position after, each upcast
	// to the current shape. Errors: *UpcastError naming an event that cannot
	// be read; errors matching ErrRebuildRequired when transaction ids went
	// backwards (a restore into another cluster).
	Read(ctx context.Context, after Position, limit int) (TailBatch, error)
	// Head returns the newest committed event, readable yet or not.
	Head(ctx context.Context) (Head, error)
	// RecordedAt returns when the event at p was recorded; ok is false when
	// no event is at p (the zero Position included).
	RecordedAt(ctx context.Context, p Position) (at time.Time, ok bool, err error)
	// HoldingTransactions lists the sessions whose open transaction, xmin,
	// holds the reader back.
	HoldingTransactions(ctx context.Context, xmin uint64) ([]HoldingTransaction, error)
}
