package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
	"github.com/evbank/bank/internal/store"
)

// RebuildLockKey is the pg_try_advisory_lock key, on the read database, that
// keeps two rebuilds apart: "evbank-r" in ASCII.
const RebuildLockKey int64 = 0x657662616e6b2d72

// RebuildTable holds the progress of a rebuild under way or interrupted.
const RebuildTable = "projection_rebuild"

// ShadowSuffix names the tables a rebuild writes beside the live ones:
// account_balances_rebuild and so on.
const ShadowSuffix = "_rebuild"

// Phases of a rebuild, in RebuildProgress.Phase.
const (
	// PhaseLoad reads and folds the event store in memory, copying the
	// transaction_history rows of each chunk into the shadow table.
	PhaseLoad = "load"
	// PhaseWrite copies the folded account_balances and daily_summaries rows.
	PhaseWrite = "write"
	// PhaseIndex builds the shadow tables' indexes and statistics.
	PhaseIndex = "index"
	// PhaseCatchUp applies the events appended meanwhile, batch by batch.
	PhaseCatchUp = "catch-up"
	// PhaseSwap applies the last events and swaps the tables in.
	PhaseSwap = "swap"
	// PhaseDone is reported once, after the swap.
	PhaseDone = "done"
)

// ErrRebuildInterrupted is returned when the context ends a rebuild early. What
// it did is kept (shadow tables and the progress row): running it again with
// the same projections resumes.
var ErrRebuildInterrupted = errors.New("rebuild interrupted; its progress is kept: run it again with the same projections to resume")

// ErrRebuildRunning is returned when another rebuild holds the rebuild lock.
var ErrRebuildRunning = errors.New("another projector rebuild is running on this read database")

// RebuildOptions configure Rebuild. Zero values take the defaults shown.
type RebuildOptions struct {
	// Projections to rebuild, by name (every projection).
	Projections []string
	// UpcastContext upcasts legacy events (default: domain.FallbackCurrency), as the
	// live projector's Tailer does.
	UpcastContext domain.UpcastContext
	// ChunkSize is how many events one read returns, and how many rows one
	// COPY writes (10000).
	ChunkSize int
	// SaveEvery is how often the load phase saves its fold state, so that a
	// rebuild that crashed resumes from there rather than fold from the start
	// (5 min). A rebuild interrupted through its context always saves.
	SaveEvery time.Duration
	// StopTimeout bounds the work after the context ends: the chunk in
	// progress and the save (15 s). Past it the save is abandoned, and a
	// resume folds from the start again, copying no row twice.
	StopTimeout time.Duration
	// LockTimeout is how long the swap waits for a lock (2 s) before it backs
	// off, catches up and tries again, up to SwapAttempts times (10). Queries
	// that arrive while the swap waits for the live tables wait behind it.
	LockTimeout  time.Duration
	SwapAttempts int
	// LockKey is the advisory lock key that keeps rebuilds apart (RebuildLockKey).
	LockKey int64
	// Progress, when set, is called after every chunk or batch and when a
	// phase starts, from the goroutine that called Rebuild.
	Progress func(RebuildProgress)
	Log      zerolog.Logger

	// indexesFirst builds the shadow tables' indexes before the load instead
	// of after it, for the benchmark that measures the difference.
	indexesFirst bool
	// afterChunk, when set (tests), runs after each load chunk is written.
	afterChunk func(done int64)
}

// RebuildProgress is a rebuild's progress, as passed to RebuildOptions.Progress.
type RebuildProgress struct {
	Phase string
	// Done is how many events the rebuilt tables have been folded up to; Total
	// how many events the store held when this run started.
	Done, Total int64
	// Rate is the events per second this run has read and folded; ETA the load
	// phase's remaining time at that rate (0 when unknown or past the load).
	Rate float64
	ETA  time.Duration
	// Elapsed is the time since this run started.
	Elapsed time.Duration
	// Position is the last event folded.
	Position eventlog.Position
	// Detail says what the write and index phases are at.
	Detail string
	// Resumed reports a run that continued an interrupted rebuild.
	Resumed bool
}

// RebuildResult describes a finished rebuild.
type RebuildResult struct {
	// Projections rebuilt, sorted.
	Projections []string
	// Position is the checkpoint the new tables were swapped in at.
	Position eventlog.Position
	// Events is how many events the new tables were folded from; Folded how
	// many of them this run read (fewer after a resume).
	Events, Folded int64
	// Resumed reports a run that continued an interrupted rebuild.
	Resumed bool
	// Duration of the whole run; Phases of each phase; Locked is how long the
	// swap held the live tables locked (queries wait that long at most).
	Duration time.Duration
	Phases   map[string]time.Duration
	Locked   time.Duration
}

func (o *RebuildOptions) defaults() error {
	if len(o.Projections) == 0 {
		o.Projections = Names()
	}
	names := slices.Clone(o.Projections)
	slices.Sort(names)
	names = slices.Compact(names)
	if _, err := ByName(names); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	o.Projections = names
	if o.UpcastContext.DefaultCurrency.IsZero() {
		o.UpcastContext.DefaultCurrency = domain.FallbackCurrency
	}
	setDefault(&o.ChunkSize, 10_000)
	setDefault(&o.SaveEvery, 5*time.Minute)
	setDefault(&o.StopTimeout, 15*time.Second)
	setDefault(&o.LockTimeout, 2*time.Second)
	setDefault(&o.SwapAttempts, 10)
	setDefault(&o.LockKey, RebuildLockKey)
	if o.ChunkSize < 1 || o.SwapAttempts < 1 || o.LockTimeout < time.Millisecond {
		return errors.New("rebuild: ChunkSize and SwapAttempts must be positive, LockTimeout at least 1ms")
	}
	return nil
}

// rebuilder is one run of Rebuild.
type rebuilder struct {
	events, read *pgxpool.Pool
	tailer       eventlog.Tailer
	opts         RebuildOptions
	log          zerolog.Logger
	projections  []Projection     // the named ones, sorted by name
	caches       map[string]Cache // of the shadow tables, for the catch-up

	start        time.Time
	total        int64 // events in the store at start
	resumed      bool
	folded       int64 // events read and folded by this run
	phase        string
	phaseStarted time.Time
	phases       map[string]time.Duration
}

// Rebuild rebuilds projections from the start of the event store into new
// tables (<table>_rebuild) while the live tables keep serving and the live
// projector keeps running, then swaps them in, with their checkpoints, in
// one short transaction: queries see the old tables or the new, never a
// half-built one, and the live projector, whose next checkpoint
// compare-and-set fails, reloads and continues from the new checkpoint.
//
// It folds the store in memory with each projection's BulkFold (the same
// rules its live Batch applies), reading it in chunks of ChunkSize events,
// each read a statement of its own; it copies each chunk's streamed rows
// (append-only tables such as transaction_history) with COPY, in a
// transaction with the progress row, and the rows the folds hold (such as
// account_balances and daily_summaries) when the load is done; then it builds the indexes (CREATE INDEX
// CONCURRENTLY, which holds no transaction id, so no tailing reader waits for
// it), applies what was appended meanwhile and swaps. The swap transaction
// locks the checkpoint rows (waiting for a live batch in flight), applies the
// last events, and only then locks the live tables for the renames.
//
// When ctx ends, Rebuild finishes the chunk in progress, saves, and returns an
// error matching ErrRebuildInterrupted; a later Rebuild of the same
// projections resumes where it stopped, and one of other projections starts
// over. Errors: ErrRebuildRunning; ErrRebuildInterrupted; those of Tailer.Read
// and of the fold (ErrInconsistent, *eventlog.UpcastError,
// eventlog.ErrRebuildRequired); database errors.
func Rebuild(ctx context.Context, events, read *pgxpool.Pool, opts RebuildOptions) (*RebuildResult, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	rb := &rebuilder{
		events: events, read: read, tailer: store.NewTailer(events, opts.UpcastContext),
		opts: opts, log: opts.Log, caches: map[string]Cache{},
		start: time.Now(), phases: map[string]time.Duration{},
	}
	rb.projections, _ = ByName(opts.Projections) // checked by defaults
	for _, p := range rb.projections {
		rb.caches[p.Name()] = p.NewCache(100_000)
	}

	// Work started goes on for StopTimeout after ctx ends: the chunk in
	// progress is written and the state saved.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var (
		mu       sync.Mutex
		timer    *time.Timer
		finished bool
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			timer = time.AfterFunc(opts.StopTimeout, cancel)
		}
	})
	defer func() {
		stop()
		mu.Lock()
		defer mu.Unlock()
		finished = true
		if timer != nil {
			timer.Stop()
		}
	}()

	unlock, err := rb.lock(wctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if err := events.QueryRow(wctx, `SELECT count(*) FROM events`).Scan(&rb.total); err != nil {
		return nil, fmt.Errorf("rebuild: count events: %w", err)
	}
	row, err := rb.prepare(wctx)
	if err != nil {
		return nil, err
	}
	rb.log.Info().Strs("projections", opts.Projections).Bool("resumed", rb.resumed).Str("phase", row.phase).
		Int64("events_done", row.done).Int64("events_total", rb.total).Stringer("position", row.pos).
		Msg("rebuild started")

	if row.phase == rebuildLoad {
		if err := rb.load(ctx, wctx, row); err != nil {
			return nil, err
		}
	}
	pos, done, err := rb.catchUpAndSwap(ctx, wctx, row.pos, row.done)
	if err != nil {
		return nil, err
	}
	res := &RebuildResult{
		Projections: opts.Projections, Position: pos, Events: done, Folded: rb.folded,
		Resumed: rb.resumed, Duration: time.Since(rb.start), Phases: rb.phases, Locked: rb.phases["locked"],
	}
	delete(res.Phases, "locked")
	rb.report(PhaseDone, pos, done, "")
	rb.log.Info().Strs("projections", opts.Projections).Stringer("position", pos).Int64("events", done).
		Int64("folded", rb.folded).Dur("duration", res.Duration).Dur("locked", res.Locked).
		Float64("events_per_second", float64(rb.folded)/res.Duration.Seconds()).Msg("rebuild swapped in")
	return res, nil
}

// lock takes the rebuild lock on a session of its own, which unlock ends.
func (rb *rebuilder) lock(ctx context.Context) (unlock func(), err error) {
	cfg := rb.read.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("rebuild lock: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, rb.opts.LockKey).Scan(&got); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("rebuild lock: %w", err)
	}
	if !got {
		closeConn(conn)
		return nil, fmt.Errorf("%w (advisory lock %d is held)", ErrRebuildRunning, rb.opts.LockKey)
	}
	return func() {
		// Released explicitly before the close: closing only sends Terminate,
		// and the server drops the lock when its backend gets to it, so a
		// rebuild started right after this one returned could still find the
		// lock held (seen under -race on a loaded machine).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, rb.opts.LockKey) // best effort: closing releases it anyway
		closeConn(conn)
	}, nil
}

// enter starts a phase, timing the one before.
func (rb *rebuilder) enter(phase string) {
	now := time.Now()
	if rb.phase != "" {
		rb.phases[rb.phase] += now.Sub(rb.phaseStarted)
	}
	rb.phase, rb.phaseStarted = phase, now
}

// report passes the progress to the Progress callback.
func (rb *rebuilder) report(phase string, pos eventlog.Position, done int64, detail string) {
	if phase != rb.phase {
		rb.enter(phase)
	}
	if rb.opts.Progress == nil {
		return
	}
	elapsed := time.Since(rb.start)
	p := RebuildProgress{Phase: phase, Done: done, Total: max(rb.total, done), Elapsed: elapsed, Position: pos, Detail: detail, Resumed: rb.resumed}
	if s := elapsed.Seconds(); s > 0 {
		p.Rate = float64(rb.folded) / s
	}
	if phase == PhaseLoad && p.Rate > 0 {
		p.ETA = time.Duration(float64(p.Total-p.Done) / p.Rate * float64(time.Second))
	}
	rb.opts.Progress(p)
}

// interrupted is the error for a rebuild stopped at pos.
func (rb *rebuilder) interrupted(phase string, pos eventlog.Position, done int64) error {
	rb.log.Warn().Str("phase", phase).Stringer("position", pos).Int64("events_done", done).Int64("events_total", rb.total).
		Msg("rebuild interrupted; progress kept, run it again to resume")
	return fmt.Errorf("%w (in the %s phase, at %s, %d of %d events)", ErrRebuildInterrupted, phase, pos, done, rb.total)
}

// catchUpAndSwap applies the events appended since the shadow tables were
// complete, then swaps, catching up again whenever a swap attempt backs off.
func (rb *rebuilder) catchUpAndSwap(ctx, wctx context.Context, pos eventlog.Position, done int64) (eventlog.Position, int64, error) {
	for attempt := 1; ; attempt++ {
		var err error
		if pos, done, err = rb.catchUp(ctx, wctx, pos, done); err != nil {
			return pos, done, err
		}
		if ctx.Err() != nil {
			return pos, done, rb.interrupted(PhaseCatchUp, pos, done)
		}
		rb.report(PhaseSwap, pos, done, fmt.Sprintf("attempt %d", attempt))
		newPos, applied, err := rb.swap(wctx, pos)
		if err == nil {
			return newPos, done + int64(applied), nil
		}
		if !retrySwap(err) || attempt >= rb.opts.SwapAttempts {
			return pos, done, fmt.Errorf("rebuild: swap (attempt %d of %d): %w", attempt, rb.opts.SwapAttempts, err)
		}
		rb.log.Info().Err(err).Int("attempt", attempt).Msg("rebuild swap backed off; catching up and trying again")
		if err := sleepErr(ctx, time.Duration(attempt)*100*time.Millisecond); err != nil {
			return pos, done, rb.interrupted(PhaseSwap, pos, done)
		}
	}
}

// errNotCaughtUp makes a swap back off: more than a chunk arrived meanwhile.
var errNotCaughtUp = errors.New("more events arrived than one swap applies")

// retrySwap reports the errors after which a swap attempt is tried again.
func retrySwap(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03", "40P01", "40001": // lock_not_available, deadlock_detected, serialization_failure
			return true
		}
	}
	return errors.Is(err, errNotCaughtUp)
}

// catchUp applies batches to the (complete, indexed) shadow tables until a
// read returns less than a chunk, each batch in a transaction with the
// progress row.
func (rb *rebuilder) catchUp(ctx, wctx context.Context, pos eventlog.Position, done int64) (eventlog.Position, int64, error) {
	for {
		tb, err := rb.tailer.Read(wctx, pos, rb.opts.ChunkSize)
		if err != nil {
			return pos, done, fmt.Errorf("rebuild: %w", err)
		}
		if n := len(tb.Events); n > 0 {
			last := eventlog.PositionOf(tb.Events[n-1])
			var works []Batch
			err := pgx.BeginFunc(wctx, rb.read, func(tx pgx.Tx) error {
				var err error
				if works, err = rb.applyShadows(wctx, tx, tb.Events); err != nil {
					return err
				}
				_, err = tx.Exec(wctx, `UPDATE `+RebuildTable+` SET transaction_id = $1::xid8, global_position = $2, events_done = $3, updated_at = now()`,
					last.TransactionID, last.GlobalPosition, done+int64(n))
				return err
			})
			if err != nil {
				rb.clearCaches()
				return pos, done, fmt.Errorf("rebuild: catch up after %s: %w", pos, err)
			}
			for _, w := range works {
				w.Committed()
			}
			pos, done = last, done+int64(n)
			rb.folded += int64(n)
		}
		rb.report(PhaseCatchUp, pos, done, "")
		if len(tb.Events) < rb.opts.ChunkSize {
			return pos, done, nil
		}
		if ctx.Err() != nil {
			return pos, done, rb.interrupted(PhaseCatchUp, pos, done)
		}
	}
}

// applyShadows writes events to the named shadow tables in tx, the way the
// Runner writes a batch to the live ones. The works' committed must be called
// once tx commits.
func (rb *rebuilder) applyShadows(ctx context.Context, tx pgx.Tx, events []eventlog.RecordedEvent) ([]Batch, error) {
	if err := checkBatch(events); err != nil {
		return nil, err
	}
	works := make([]Batch, len(rb.projections))
	b := &pgx.Batch{}
	for i, p := range rb.projections {
		works[i] = p.Batch(events, Shadow, rb.caches[p.Name()])
		works[i].QueueLoad(b)
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, err
		}
	}
	b = &pgx.Batch{}
	for _, w := range works {
		if err := w.Fold(); err != nil {
			return nil, err
		}
		w.QueueWrite(b)
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, err
		}
	}
	return works, nil
}

// swap is one attempt at the swap transaction: lock the checkpoint rows (the
// live Runner locks them first in its batches too, so it is waited for, not
// deadlocked with), apply the last events to the shadow tables, lock the
// live tables, rename, set the checkpoints (and their updated_at, so that the
// live Runner's compare-and-set fails and it reloads) and delete the progress
// row. It returns the new checkpoint and how many events it applied.
func (rb *rebuilder) swap(ctx context.Context, pos eventlog.Position) (eventlog.Position, int, error) {
	names := rb.opts.Projections
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = quoteLiteral(n)
	}
	// What the renames need is read first, outside the locks.
	var (
		ddl    []string
		tables []string
	)
	for _, t := range rb.tables() {
		n := t.Name
		tables = append(tables, ident(n))
		shadow, old := Shadow(t), n+ShadowSuffix+"_old"
		grants, err := grantsOf(ctx, rb.read, n, shadow)
		if err != nil {
			return pos, 0, err
		}
		idx, err := liveIndexes(ctx, rb.read, n)
		if err != nil {
			return pos, 0, err
		}
		ddl = append(ddl, grants...)
		ddl = append(ddl,
			`ALTER TABLE `+ident(n)+` RENAME TO `+ident(old),
			`ALTER TABLE `+ident(shadow)+` RENAME TO `+ident(n),
			`DROP TABLE `+ident(old))
		for _, ix := range idx {
			ddl = append(ddl, `ALTER INDEX `+ident(shadowIndexName(ix.name))+` RENAME TO `+ident(ix.name))
		}
	}

	tx, err := rb.read.Begin(ctx)
	if err != nil {
		return pos, 0, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, rb.opts.LockTimeout.Milliseconds())); err != nil {
		return pos, 0, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+readmodel.CheckpointTable+` (projection, transaction_id, global_position)
SELECT unnest($1::text[]), '0'::xid8, 0 ON CONFLICT (projection) DO NOTHING`, names); err != nil {
		return pos, 0, err
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+readmodel.CheckpointTable+` WHERE projection = ANY($1) ORDER BY projection FOR UPDATE`, names); err != nil {
		return pos, 0, err
	}
	// No live batch can commit now: apply what is left.
	tb, err := rb.tailer.Read(ctx, pos, rb.opts.ChunkSize)
	if err != nil {
		return pos, 0, err
	}
	if len(tb.Events) == rb.opts.ChunkSize {
		return pos, 0, errNotCaughtUp
	}
	if len(tb.Events) > 0 {
		if _, err := rb.applyShadows(ctx, tx, tb.Events); err != nil {
			rb.clearCaches()
			return pos, 0, err
		}
		pos = eventlog.PositionOf(tb.Events[len(tb.Events)-1])
	}

	// One round trip (no parameters: the simple protocol, several statements)
	// and the commit: that is how long queries wait.
	ddl = append([]string{`LOCK TABLE ` + strings.Join(tables, ", ") + ` IN ACCESS EXCLUSIVE MODE`}, ddl...)
	ddl = append(ddl,
		fmt.Sprintf(`UPDATE %s SET transaction_id = '%d'::xid8, global_position = %d, updated_at = clock_timestamp() WHERE projection IN (%s)`,
			readmodel.CheckpointTable, pos.TransactionID, pos.GlobalPosition, strings.Join(quoted, ", ")),
		`DELETE FROM `+RebuildTable)
	locked := time.Now()
	if _, err := tx.Exec(ctx, strings.Join(ddl, ";\n")); err != nil {
		rb.clearCaches()
		return pos, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		rb.clearCaches()
		return pos, 0, fmt.Errorf("commit swap: %w", err)
	}
	rb.phases["locked"] = time.Since(locked)
	rb.folded += int64(len(tb.Events))
	return pos, len(tb.Events), nil
}

// tables are the live tables of the projections rebuilt.
func (rb *rebuilder) tables() []readmodel.Table {
	var ts []readmodel.Table
	for _, p := range rb.projections {
		ts = append(ts, p.Tables()...)
	}
	return ts
}

func (rb *rebuilder) clearCaches() {
	for _, c := range rb.caches {
		c.Clear()
	}
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
