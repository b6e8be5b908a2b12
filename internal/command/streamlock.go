package command

import (
	"context"

	"github.com/google/uuid"
)

// streamLocks queue the commands of one api process on the same stream, so that
// concurrent deposits to a hot account wait their turn instead of all reading
// version N, all inserting N+1 and all but one failing and retrying. It is only
// a throughput aid: unique(stream_id, version) in the database stays the guard,
// and commands from other processes still race and retry.
type streamLocks struct {
	stripes []chan struct{}
}

func newStreamLocks(n int) *streamLocks {
	l := &streamLocks{stripes: make([]chan struct{}, n)}
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	return l
}

// lock waits for id's stripe, or for ctx to end.
func (l *streamLocks) lock(ctx context.Context, id uuid.UUID) (unlock func(), err error) {
	// A UUID's bytes are already uniformly spread; the last two choose the stripe.
	ch := l.stripes[(int(id[14])<<8|int(id[15]))%len(l.stripes)]
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
