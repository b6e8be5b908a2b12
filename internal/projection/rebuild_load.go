package projection

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/eventlog"
)

// rowSource is a pgx.CopyFromSource of the rows from..to-1 that fill makes.
// Fills give uuids as [16]byte: pgx encodes a uuid.UUID through its
// driver.Valuer (text, then parsed back), which costs more than the rest of
// the row.
type rowSource struct {
	i, to int
	vals  []any
	fill  func(i int, vals []any)
}

func (s *rowSource) Next() bool {
	if s.i >= s.to {
		return false
	}
	s.fill(s.i, s.vals) // CopyFrom encodes a row before asking for the next
	s.i++
	return true
}

func (s *rowSource) Values() ([]any, error) { return s.vals, nil }
func (s *rowSource) Err() error             { return nil }

// readResult is one read of the load phase's reader.
type readResult struct {
	tb  eventlog.TailBatch
	err error
}

// load is the load phase, then the write and index phases: it folds the
// event store with each projection's BulkFold from row's saved state (or the
// start), copying each chunk's streamed rows with the progress row, until a
// read returns less than a chunk; then it saves what the folds hold (their
// tables' rows), builds the indexes and marks the shadow tables ready. On
// return without error row holds the position they are complete at.
func (rb *rebuilder) load(ctx, wctx context.Context, row *rebuildRow) error {
	folds := rb.newFolds()
	var (
		from  eventlog.Position
		done  int64
		saved *eventlog.Position // where the state in the shadow tables is from
	)
	if row.statePos != nil {
		if err := rb.restore(wctx, folds); err != nil {
			rb.log.Warn().Err(err).Msg("rebuild: the saved fold state cannot be read back; folding from the start again")
			folds = rb.newFolds()
		} else {
			from, done, saved = *row.statePos, row.stateDone, row.statePos
			rb.log.Info().Stringer("position", from).Int("accounts", foldSize(folds)).Msg("rebuild: fold state read back")
		}
	}
	// The shadow tables hold the streamed rows up to here already.
	copied := row.pos
	pos := from
	rb.report(PhaseLoad, pos, done, "")

	// A reader goroutine keeps the next chunk coming while this one is folded
	// and copied.
	rctx, stopReading := context.WithCancel(wctx)
	results := make(chan readResult, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(results)
		rb.readChunks(rctx, from, done, results)
	}()
	defer func() {
		stopReading()
		for range results { // drain, so that the reader ends
		}
		<-readerDone
	}()

	// A writer goroutine copies each chunk while the next is folded.
	w := rb.startWriter(wctx)
	defer w.stop()

	lastSave := time.Now()
	guard := newStreamGuard(folds, saved != nil)
	for r := range results {
		if r.err != nil {
			return fmt.Errorf("rebuild: %w", r.err)
		}
		if n := len(r.tb.Events); n > 0 {
			for _, e := range r.tb.Events {
				if err := guard.check(e); err != nil {
					return fmt.Errorf("rebuild: %w", err)
				}
				emit := copied.Less(eventlog.PositionOf(e))
				for _, f := range folds {
					if err := f.Apply(e, emit); err != nil {
						return fmt.Errorf("rebuild: %w", err)
					}
				}
			}
			last := eventlog.PositionOf(r.tb.Events[n-1])
			done += int64(n)
			rb.folded += int64(n)
			var streamed []Rows
			for _, f := range folds {
				streamed = append(streamed, f.Stream()...)
			}
			if copied.Less(last) {
				if err := w.write(streamed, last, done); err != nil {
					return err
				}
				copied = last
			}
			pos = last
			if rb.opts.afterChunk != nil {
				rb.opts.afterChunk(done)
			}
		}
		rb.report(PhaseLoad, pos, done, "")
		if ctx.Err() != nil {
			stopReading()
			if err := w.flush(); err != nil {
				return err
			}
			if err := rb.saveState(wctx, folds, PhaseLoad, pos, done); err != nil {
				rb.log.Error().Err(err).Msg("rebuild: saving the fold state failed; a resume will fold from the start again")
			}
			return rb.interrupted(PhaseLoad, pos, done)
		}
		if time.Since(lastSave) >= rb.opts.SaveEvery && len(r.tb.Events) == rb.opts.ChunkSize {
			if err := w.flush(); err != nil {
				return err
			}
			if err := rb.saveState(wctx, folds, PhaseLoad, pos, done); err != nil {
				return err
			}
			at := pos
			lastSave, saved = time.Now(), &at
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	rb.log.Info().Stringer("position", pos).Int64("events", done).Int("accounts", foldSize(folds)).
		Dur("elapsed", time.Since(rb.start)).Msg("rebuild: event store folded")

	// What the load folded is written as a save is (unless it is saved already).
	if saved == nil || *saved != pos {
		if err := rb.saveState(wctx, folds, PhaseWrite, pos, done); err != nil {
			return err
		}
	}
	for _, t := range rb.tables() {
		shadow := Shadow(t)
		if err := rb.buildIndexes(wctx, t.Name, func(index string) { rb.report(PhaseIndex, pos, done, "index "+index) }); err != nil {
			return err
		}
		rb.report(PhaseIndex, pos, done, "analyze "+shadow)
		// Statistics for the planner, and the visibility map for index-only
		// scans; VACUUM holds no transaction id while it scans.
		if _, err := rb.read.Exec(wctx, `VACUUM (ANALYZE) `+ident(shadow)); err != nil {
			return fmt.Errorf("rebuild: vacuum %s: %w", shadow, err)
		}
		if ctx.Err() != nil {
			return rb.interrupted(PhaseIndex, pos, done)
		}
	}
	if _, err := rb.read.Exec(wctx, fmt.Sprintf(`UPDATE %s SET phase = '%s', transaction_id = '%d'::xid8, global_position = %d, events_done = %d,
    state_transaction_id = NULL, state_global_position = NULL, state_events_done = NULL, updated_at = now()`,
		RebuildTable, rebuildReady, pos.TransactionID, pos.GlobalPosition, done)); err != nil {
		return fmt.Errorf("rebuild: mark the shadow tables ready: %w", err)
	}
	row.phase, row.pos, row.done = rebuildReady, pos, done
	return nil
}

// streamGuard checks, whichever projections are rebuilt, that each stream's
// versions arrive contiguous from 1, starting with AccountOpened: a rebuild
// must not fold a store that the live projector would refuse. After a resume
// it knows the streams from the first event it reads of each.
type streamGuard struct {
	versions map[uuid.UUID]*int // pointers: one lookup per event
	resumed  bool
}

// streamChecker is a BulkFold that refuses what streamGuard refuses already
// (balances, which folds every stream through the aggregate).
type streamChecker interface{ checksStreams() }

// newStreamGuard returns the guard folds need, nil when one of them checks
// the streams itself: the load folds every event, so no check runs twice.
func newStreamGuard(folds []BulkFold, resumed bool) *streamGuard {
	for _, f := range folds {
		if _, ok := f.(streamChecker); ok {
			return nil
		}
	}
	return &streamGuard{versions: map[uuid.UUID]*int{}, resumed: resumed}
}

func (g *streamGuard) check(e eventlog.RecordedEvent) error {
	if g == nil {
		return nil
	}
	v := g.versions[e.StreamID]
	if v == nil {
		v = new(int)
		g.versions[e.StreamID] = v
		if g.resumed {
			*v = e.Version - 1 // its earlier events were folded before the resume
		}
	}
	if e.Version != *v+1 {
		return &ContiguityError{Projection: "rebuild", StreamID: e.StreamID, Have: *v, Got: e.Version, Position: eventlog.PositionOf(e)}
	}
	if err := checkFirst(*v, e); err != nil {
		return err
	}
	*v = e.Version
	return nil
}

// newFolds returns an empty BulkFold of each projection rebuilt.
func (rb *rebuilder) newFolds() []BulkFold {
	folds := make([]BulkFold, len(rb.projections))
	for i, p := range rb.projections {
		folds[i] = p.Bulk()
	}
	return folds
}

// restore reads the saved state back into folds.
func (rb *rebuilder) restore(ctx context.Context, folds []BulkFold) error {
	for _, f := range folds {
		if err := f.Restore(ctx, rb.read, Shadow); err != nil {
			return err
		}
	}
	return nil
}

// foldSize is the most accounts (or rows) one of folds holds, for the log.
func foldSize(folds []BulkFold) int {
	n := 0
	for _, f := range folds {
		n = max(n, f.Size())
	}
	return n
}

// readChunks sends the chunks after `after` to results, in order, until a
// read returns less than a chunk: first the full chunks, several read at once
// (readFull), then the rest (readTail). done counts the events up to after.
func (rb *rebuilder) readChunks(ctx context.Context, after eventlog.Position, done int64, results chan<- readResult) {
	readers := min(4, runtime.GOMAXPROCS(0))
	for ok := true; ok; {
		if readers > 1 {
			if after, done, ok = rb.readFull(ctx, after, done, readers, results); !ok {
				return
			}
		}
		after, done, ok = rb.readTail(ctx, after, done, results)
	}
}

// chunkEndSQL finds where the chunk after a position ends: the ChunkSize-th
// event after it, in the gap-safe order and below the snapshot's xmin, so
// that no transaction can still add an event before it. One index-only walk.
const chunkEndSQL = `SELECT transaction_id, global_position FROM events
WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY transaction_id, global_position
OFFSET $3 LIMIT 1`

// readFull reads the full chunks there are, readers at once: decoding the
// events costs more than anything else in the load, and one goroutine does
// it at about half the speed the rest goes. Each chunk's end is found first
// (chunkEndSQL), so the chunks can be read side by side; each is read with
// Tailer.Read, which must return exactly the chunk, since every event up to
// its end was final when the end was found. It returns where the full chunks
// end; ok is false once it has sent an error, or ctx ended.
func (rb *rebuilder) readFull(ctx context.Context, after eventlog.Position, done int64, readers int, results chan<- readResult) (eventlog.Position, int64, bool) {
	type job struct {
		after, end eventlog.Position
		out        chan readResult
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	defer func() {
		close(jobs)
		wg.Wait()
	}()
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				tb, err := rb.tailer.Read(ctx, j.after, rb.opts.ChunkSize)
				if n := len(tb.Events); err == nil && (n != rb.opts.ChunkSize || eventlog.PositionOf(tb.Events[n-1]) != j.end) {
					err = fmt.Errorf("%w: the chunk after %s should end at %s; a read returned %d events", ErrInconsistent, j.after, j.end, n)
				}
				j.out <- readResult{tb, err}
			}
		}()
	}
	send := func(r readResult) bool {
		select {
		case results <- r:
			return r.err == nil
		case <-ctx.Done():
			return false
		}
	}
	var pending []job
	more := true
	for {
		for more && len(pending) <= readers {
			var end eventlog.Position
			err := rb.events.QueryRow(ctx, chunkEndSQL, after.TransactionID, after.GlobalPosition, rb.opts.ChunkSize-1).Scan(&end.TransactionID, &end.GlobalPosition)
			if errors.Is(err, pgx.ErrNoRows) {
				more = false
				break
			}
			if err != nil {
				send(readResult{err: fmt.Errorf("find the end of the chunk after %s: %w", after, err)})
				return after, done, false
			}
			j := job{after: after, end: end, out: make(chan readResult, 1)}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return after, done, false
			}
			pending = append(pending, j)
			after = end
		}
		if len(pending) == 0 {
			return after, done, true
		}
		var r readResult
		select {
		case r = <-pending[0].out:
		case <-ctx.Done():
			return after, done, false
		}
		pending = pending[1:]
		if !send(r) {
			return after, done, false
		}
		done += int64(rb.opts.ChunkSize)
	}
}

// readTail sends the chunk after `after`, and more while a read returns less
// than a chunk but must be waited on; more is true after a full chunk (the
// caller reads on), false at the end or after an error. Events committed
// before the rebuild started are waited for: a read held back by an older
// transaction does not end the load while fewer events than the store held
// at the start are folded (done counts them), so the bulk of the store goes
// through the load, not through the slower catch-up. The session holding the
// reader back is logged every 10 s.
func (rb *rebuilder) readTail(ctx context.Context, after eventlog.Position, done int64, results chan<- readResult) (_ eventlog.Position, _ int64, more bool) {
	poll := 10 * time.Millisecond
	var heldSince, logged time.Time
	for {
		tb, err := rb.tailer.Read(ctx, after, rb.opts.ChunkSize)
		if err == nil && len(tb.Events) < rb.opts.ChunkSize && tb.HeldBack && done+int64(len(tb.Events)) < rb.total {
			now := time.Now()
			if heldSince.IsZero() {
				heldSince, logged = now, now
			}
			if now.Sub(logged) >= 10*time.Second {
				logged = now
				ev := rb.log.Warn().Uint64("xmin", tb.Xmin).Dur("held_back_for", now.Sub(heldSince))
				if hs, err := rb.tailer.HoldingTransactions(ctx, tb.Xmin); err == nil && len(hs) > 0 {
					ev = ev.Int("holding_pid", hs[0].PID).Str("holding_database", hs[0].Database).Str("holding_application", hs[0].ApplicationName).
						Dur("holding_transaction_age", hs[0].TransactionAge).Str("holding_query", hs[0].Query)
				}
				ev.Msg("rebuild held back: an open transaction keeps committed events from being read; waiting for it")
			}
			if len(tb.Events) == 0 {
				if sleepErr(ctx, poll) != nil {
					return after, done, false
				}
				poll = min(2*poll, 500*time.Millisecond)
				continue
			}
		} else {
			heldSince = time.Time{}
		}
		select {
		case results <- readResult{tb, err}:
		case <-ctx.Done():
			return after, done, false
		}
		if err != nil {
			return after, done, false
		}
		if n := len(tb.Events); n > 0 {
			after, done, poll = eventlog.PositionOf(tb.Events[n-1]), done+int64(n), 10*time.Millisecond
		}
		switch {
		case len(tb.Events) == rb.opts.ChunkSize:
			return after, done, true
		case heldSince.IsZero():
			return after, done, false
		}
	}
}

// chunkWriter copies chunks in a goroutine of its own, one chunk behind the
// fold, so that reading, folding and copying overlap.
type chunkWriter struct {
	rb   *rebuilder
	ctx  context.Context
	jobs chan writeJob
	fail chan struct{} // closed on the first error, err set before
	err  error
	done chan struct{} // closed when the goroutine ends
}

// writeJob is a chunk to write, or (ack set) a flush.
type writeJob struct {
	rows []Rows
	last eventlog.Position
	done int64
	ack  chan struct{}
}

func (rb *rebuilder) startWriter(ctx context.Context) *chunkWriter {
	w := &chunkWriter{rb: rb, ctx: ctx, jobs: make(chan writeJob, 1), fail: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *chunkWriter) run() {
	defer close(w.done)
	for j := range w.jobs {
		if j.ack != nil {
			close(j.ack)
			continue
		}
		if w.err == nil {
			if err := w.rb.writeChunk(w.ctx, j.rows, j.last, j.done); err != nil {
				w.err = err
				close(w.fail)
			}
		}
		for _, r := range j.rows {
			if r.Release != nil {
				r.Release()
			}
		}
	}
}

// write queues a chunk's rows, which belong to the writer from then on.
// Errors: the writer's first.
func (w *chunkWriter) write(rows []Rows, last eventlog.Position, done int64) error {
	select {
	case w.jobs <- writeJob{rows: rows, last: last, done: done}:
		return nil
	case <-w.fail:
		return w.err
	}
}

// flush waits until every chunk queued is written. Errors: the writer's first.
func (w *chunkWriter) flush() error {
	ack := make(chan struct{})
	select {
	case w.jobs <- writeJob{ack: ack}:
	case <-w.fail:
		return w.err
	}
	select {
	case <-ack:
	case <-w.fail:
	}
	select {
	case <-w.fail:
		return w.err
	default:
		return nil
	}
}

// stop ends the goroutine once what was queued is written (or failed).
func (w *chunkWriter) stop() {
	close(w.jobs)
	<-w.done
}

// writeChunk copies a chunk's streamed rows into the shadow tables and moves
// the progress row to last, in one transaction.
func (rb *rebuilder) writeChunk(ctx context.Context, rows []Rows, last eventlog.Position, done int64) error {
	err := pgx.BeginFunc(ctx, rb.read, func(tx pgx.Tx) error {
		for _, r := range rows {
			src := &rowSource{to: r.N, vals: make([]any, len(r.Table.Columns)), fill: r.Fill}
			n, err := tx.CopyFrom(ctx, pgx.Identifier{Shadow(r.Table)}, r.Table.Columns, src)
			if err != nil {
				return err
			}
			if n != int64(r.N) {
				return fmt.Errorf("%d rows copied into %s, expected %d", n, Shadow(r.Table), r.N)
			}
		}
		_, err := tx.Exec(ctx, `UPDATE `+RebuildTable+` SET transaction_id = $1::xid8, global_position = $2, events_done = $3, updated_at = now()`,
			last.TransactionID, last.GlobalPosition, done)
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild: write the chunk up to %s: %w", last, err)
	}
	return nil
}

// saveState writes what the folds hold in memory into their shadow tables,
// replacing what those held, then records pos as the saved state's position.
// Each COPY is a transaction of its own: the state is marked unsaved before
// the first and saved after the last.
func (rb *rebuilder) saveState(ctx context.Context, folds []BulkFold, phase string, pos eventlog.Position, done int64) error {
	start := time.Now()
	if _, err := rb.read.Exec(ctx, `UPDATE `+RebuildTable+` SET state_transaction_id = NULL, state_global_position = NULL, state_events_done = NULL, updated_at = now()`); err != nil {
		return fmt.Errorf("rebuild: save: %w", err)
	}
	replace := func(ctx context.Context, r Rows) error {
		table := Shadow(r.Table)
		if _, err := rb.read.Exec(ctx, `TRUNCATE `+ident(table)); err != nil {
			return fmt.Errorf("rebuild: save: %w", err)
		}
		return rb.copyRows(ctx, table, r.Table.Columns, r.N, r.Fill, func(n int) {
			rb.report(phase, pos, done, fmt.Sprintf("%s %d/%d rows", table, n, r.N))
		})
	}
	for _, f := range folds {
		if err := f.Save(ctx, replace); err != nil {
			return err
		}
	}
	if _, err := rb.read.Exec(ctx, `UPDATE `+RebuildTable+` SET state_transaction_id = $1::xid8, state_global_position = $2, state_events_done = $3, updated_at = now()`,
		pos.TransactionID, pos.GlobalPosition, done); err != nil {
		return fmt.Errorf("rebuild: save: %w", err)
	}
	rb.log.Info().Stringer("position", pos).Int("accounts", foldSize(folds)).
		Dur("took", time.Since(start)).Msg("rebuild: fold state written")
	return nil
}

// copyRows copies n rows made by fill into table, ChunkSize rows per COPY,
// each COPY a transaction of its own; progress hears of each.
func (rb *rebuilder) copyRows(ctx context.Context, table string, cols []string, n int, fill func(int, []any), progress func(done int)) error {
	for from := 0; from < n; from += rb.opts.ChunkSize {
		to := min(n, from+rb.opts.ChunkSize)
		src := &rowSource{i: from, to: to, vals: make([]any, len(cols)), fill: fill}
		got, err := rb.read.CopyFrom(ctx, pgx.Identifier{table}, cols, src)
		if err != nil {
			return fmt.Errorf("rebuild: copy into %s: %w", table, err)
		}
		if got != int64(to-from) {
			return fmt.Errorf("rebuild: copy into %s: %d rows copied, expected %d", table, got, to-from)
		}
		progress(to)
	}
	return nil
}
