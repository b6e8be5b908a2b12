package projection

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// naiveReader is the reader DESIGN §4 warns about: it checkpoints
// global_position alone, so an event whose transaction took its identity value
// early and committed late lands behind its checkpoint and is never read.
type naiveReader struct {
	pool *pgxpool.Pool
	cp   atomic.Int64
	mu   sync.Mutex
	seen map[uuid.UUID]bool
}

func (n *naiveReader) poll(ctx context.Context) error {
	rows, err := n.pool.Query(ctx, `SELECT global_position, event_id FROM events WHERE global_position > $1 ORDER BY global_position LIMIT 100`, n.cp.Load())
	if err != nil {
		return err
	}
	defer rows.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	for rows.Next() {
		var (
			pos int64
			id  uuid.UUID
		)
		if err := rows.Scan(&pos, &id); err != nil {
			return err
		}
		n.seen[id] = true
		n.cp.Store(pos)
	}
	return rows.Err()
}

func (n *naiveReader) saw(id uuid.UUID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seen[id]
}

// TestGapSafeTailing runs concurrent appenders on shared and separate streams,
// some holding their transaction open so that it commits after later ones,
// while a Runner tails; one transaction is held, deterministically, until the
// naive reader has passed its position. The Runner must end with the tables
// of a full replay, having seen every stream's versions in order; the naive
// reader must have missed that event.
func TestGapSafeTailing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	r := e.runner(t, Options{BatchSize: 25, MaxPoll: 5 * time.Millisecond, StandbyRetry: 100 * time.Millisecond})
	watch := watchVersions(r)

	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(runCtx) }()

	naive := &naiveReader{pool: e.events, seen: map[uuid.UUID]bool{}}
	naiveCtx, stopNaive := context.WithCancel(ctx)
	naiveDone := make(chan error, 1)
	go func() {
		for naiveCtx.Err() == nil {
			if err := naive.poll(naiveCtx); err != nil && naiveCtx.Err() == nil {
				naiveDone <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
		naiveDone <- nil
	}()

	// The deterministic late commit: a low identity value, committed only once
	// the naive reader has read past it.
	late := uuid.New()
	lateEvent := uuid.New()
	lateErr := make(chan error, 1)
	go func() {
		lateErr <- func() error {
			tx, err := e.events.Begin(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback(ctx) }()
			typ, sv, data := eventFor(late, 1)
			var pos int64
			if err := tx.QueryRow(ctx, insertSQL, late, 1, lateEvent, typ, sv, data).Scan(&pos); err != nil {
				return err
			}
			deadline := time.Now().Add(15 * time.Second)
			for naive.cp.Load() <= pos {
				if time.Now().After(deadline) {
					return errors.New("the naive reader never passed the open transaction's position")
				}
				time.Sleep(time.Millisecond)
			}
			return tx.Commit(ctx)
		}()
	}()

	const (
		appenders = 8
		perWriter = 60
	)
	shared := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	for w := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			own := uuid.New()
			for range perWriter {
				stream := own
				if rng.IntN(2) == 0 {
					stream = shared[rng.IntN(len(shared))]
				}
				var hold time.Duration
				if rng.IntN(8) == 0 {
					hold = time.Duration(10+rng.IntN(50)) * time.Millisecond
				}
				if _, err := appendOne(ctx, e.events, stream, hold); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := <-lateErr; err != nil {
		t.Fatal(err)
	}

	waitCaughtUp(t, e, r)
	stopRun()
	if err := <-runDone; err != nil {
		t.Fatalf("Run: %v", err)
	}
	stopNaive()
	if err := <-naiveDone; err != nil {
		t.Fatalf("naive reader: %v", err)
	}

	watch.mu.Lock()
	defer watch.mu.Unlock()
	for _, msg := range watch.errs {
		t.Errorf("out of order: %s", msg)
	}
	total := count(t, e.events, `SELECT count(*) FROM events`)
	var seenByRunner, maxVersions int
	for _, v := range watch.last {
		seenByRunner += v
	}
	maxVersions = count(t, e.events, `SELECT COALESCE(sum(v), 0)::int FROM (SELECT max(version) AS v FROM events GROUP BY stream_id) s`)
	if seenByRunner != total || maxVersions != total {
		t.Fatalf("runner saw %d events; the store holds %d (sum of stream versions %d)", seenByRunner, total, maxVersions)
	}
	assertTablesMatchReplay(t, e)

	if naive.saw(lateEvent) {
		t.Fatal("the naive reader saw the late event: the scenario did not exercise the gap")
	}
	naive.mu.Lock()
	t.Logf("%d events; the gap-safe runner applied all; the naive reader missed %d", total, total-len(naive.seen))
	naive.mu.Unlock()
}
