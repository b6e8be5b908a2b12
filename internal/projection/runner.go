package projection

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
)

// DefaultLockKey is the pg_try_advisory_lock key that elects the active
// projector: "evbank-p" in ASCII.
const DefaultLockKey int64 = 0x657662616e6b2d70

// Options configure a Runner. Zero values take the defaults shown.
type Options struct {
	// Projections to run (All()).
	Projections []Projection
	// BatchSize is the most events read and applied in one transaction (1000).
	BatchSize int
	// MinPoll is the pause after a batch that was not full (1 ms); each empty
	// read doubles it, up to MaxPoll (50 ms). After a full batch the next read
	// starts at once.
	MinPoll, MaxPoll time.Duration
	// StandbyRetry is how often a standby tries for the lock, and how often the
	// active instance checks that it still holds it (1 s).
	StandbyRetry time.Duration
	// BatchTimeout bounds one batch (10 s). A batch runs to its end after the
	// Run context is cancelled, so that shutdown finishes the current batch;
	// keep it below the process's shutdown timeout.
	BatchTimeout time.Duration
	// HeldBackWarning is how long the reader may wait for an old transaction
	// before it logs the sessions holding it back (10 s).
	HeldBackWarning time.Duration
	// LockKey is the advisory lock key on the read database (DefaultLockKey).
	LockKey int64
	// StateCache is how many accounts' states each projection keeps in memory
	// between batches, saving their reads (100000); -1 keeps none.
	StateCache int
	// Metrics to update (a private set).
	Metrics *Metrics
	Log     zerolog.Logger
}

func (o *Options) defaults() error {
	if o.Projections == nil {
		o.Projections = All()
	}
	if len(o.Projections) == 0 {
		return errors.New("projection runner: no projections")
	}
	seen := map[string]bool{}
	for _, p := range o.Projections {
		if seen[p.Name()] {
			return fmt.Errorf("projection runner: projection %s given twice", p.Name())
		}
		seen[p.Name()] = true
	}
	o.Projections = sortByName(o.Projections)
	setDefault(&o.BatchSize, 1000)
	setDefault(&o.MinPoll, time.Millisecond)
	setDefault(&o.MaxPoll, 50*time.Millisecond)
	o.MaxPoll = max(o.MaxPoll, o.MinPoll)
	setDefault(&o.StandbyRetry, time.Second)
	setDefault(&o.BatchTimeout, 10*time.Second)
	setDefault(&o.HeldBackWarning, 10*time.Second)
	setDefault(&o.LockKey, DefaultLockKey)
	setDefault(&o.StateCache, 100_000)
	if o.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return err
		}
		o.Metrics = m
	}
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Runner applies events from the event store to the projections. Run and
// CatchUp must not run at the same time on one Runner; Active and Checkpoints
// may be called from any goroutine.
type Runner struct {
	tailer eventlog.Tailer
	read   *pgxpool.Pool
	opts   Options
	log    zerolog.Logger
	m      *Metrics
	active atomic.Bool

	mu          sync.Mutex
	checkpoints map[string]eventlog.Position
	stamps      map[string]time.Time // checkpoint rows' updated_at, part of the compare-and-set
	high        map[string]mark      // newest event applied, for lag
	loaded      bool
	failing     Failure // zero while batches succeed

	caches map[string]Cache // by projection; touched by the goroutine applying batches only

	heldBackSince, heldBackLogged time.Time

	// afterApply, when set (tests), sees every committed batch.
	afterApply func(events []eventlog.RecordedEvent)
}

// Failure describes batches failing one after another, without a success
// between them.
type Failure struct {
	// Since is when the first of them failed; Count how many have.
	Since time.Time
	Count int
	// Event names the event the last failed batch started with (its position
	// and stream), when the batch could be read; "" otherwise.
	Event string
}

// Failing reports the batches failing now; ok is false while they succeed.
// A process health check turns unready when they have failed for long: a
// batch that fails again and again is an incident, not something to retry
// quietly.
func (r *Runner) Failing() (f Failure, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failing, r.failing.Count > 0
}

// mark is a point of the global order with its time, for lag.
type mark struct {
	pos int64
	at  time.Time
}

// NewRunner returns a Runner that tails events with tailer and writes the
// projections through read. Errors: invalid options or metrics that cannot
// be registered.
func NewRunner(tailer eventlog.Tailer, read *pgxpool.Pool, opts Options) (*Runner, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	opts.Metrics.init(opts.Projections)
	caches := map[string]Cache{}
	for _, p := range opts.Projections {
		caches[p.Name()] = p.NewCache(opts.StateCache)
	}
	return &Runner{tailer: tailer, read: read, opts: opts, log: opts.Log, m: opts.Metrics, caches: caches}, nil
}

// Active reports whether this Runner holds the lock and applies events.
func (r *Runner) Active() bool { return r.active.Load() }

// Checkpoints returns the position each projection has applied up to, as this
// Runner last read or wrote it.
func (r *Runner) Checkpoints() map[string]eventlog.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]eventlog.Position, len(r.checkpoints))
	for k, v := range r.checkpoints {
		out[k] = v
	}
	return out
}

// Run keeps the projections up to date until ctx ends, then returns nil once
// the batch in progress is committed. Of the Runners sharing a read database
// and lock key, one is active (it holds pg_try_advisory_lock on a dedicated
// connection) and the others stand by, trying again every StandbyRetry; a
// standby takes over when the active one's session ends. Transient database
// errors are retried. Errors: those retrying cannot cure, which mean the
// events or tables need an operator: ErrInconsistent (a *ContiguityError
// among them), *eventlog.UpcastError, eventlog.ErrRebuildRequired.
func (r *Runner) Run(ctx context.Context) error {
	var conn *pgx.Conn
	defer func() {
		r.setActive(false)
		if conn != nil {
			closeConn(conn)
		}
	}()
	standbyLogged := false
	var lastErr string
	for ctx.Err() == nil {
		got, c, err := r.tryLock(ctx, conn)
		conn = c
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if msg := err.Error(); msg != lastErr {
				r.log.Warn().Err(err).Msg("projector lock: cannot reach the read database; retrying")
				lastErr = msg
			}
		}
		if !got {
			if err == nil && !standbyLogged {
				r.log.Info().Int64("lock_key", r.opts.LockKey).Msg("projector standby: another instance is active; waiting for the lock")
				standbyLogged = true
			}
			sleep(ctx, r.opts.StandbyRetry)
			continue
		}
		standbyLogged, lastErr = false, ""
		host, _ := os.Hostname()
		r.log.Info().Int64("lock_key", r.opts.LockKey).Str("host", host).Int("pid", os.Getpid()).Msg("projector active: holding the lock, applying events")
		r.setActive(true)
		err = r.runActive(ctx, conn)
		r.setActive(false)
		closeConn(conn) // ends the session, which releases the lock
		conn = nil
		switch {
		case err != nil && isFatal(err):
			r.log.Error().Err(err).Msg("projector stopped: this needs an operator")
			return err
		case ctx.Err() != nil:
			r.log.Info().Msg("projector stopped; lock released")
			return nil
		}
		r.log.Warn().Err(err).Msg("projector standing down; lock released")
		sleep(ctx, r.opts.StandbyRetry)
	}
	return nil
}

func (r *Runner) setActive(v bool) {
	r.active.Store(v)
	if v {
		r.m.active.Set(1)
	} else {
		r.m.active.Set(0)
	}
}

// tryLock tries for the advisory lock on conn, opening a dedicated session
// when conn is nil. It returns the connection to keep (nil after an error).
func (r *Runner) tryLock(ctx context.Context, conn *pgx.Conn) (bool, *pgx.Conn, error) {
	if conn == nil {
		cfg := r.read.Config().ConnConfig.Copy()
		if cfg.RuntimeParams == nil {
			cfg.RuntimeParams = map[string]string{}
		}
		// A dead host's session, and so its lock, must not outlive it by long:
		// server-side keepalives end it within ~15 s (TCP connections only).
		cfg.RuntimeParams["tcp_keepalives_idle"] = "5"
		cfg.RuntimeParams["tcp_keepalives_interval"] = "2"
		cfg.RuntimeParams["tcp_keepalives_count"] = "3"
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := pgx.ConnectConfig(cctx, cfg)
		cancel()
		if err != nil {
			return false, nil, err
		}
		conn = c
	}
	var got bool
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.QueryRow(qctx, `SELECT pg_try_advisory_lock($1)`, r.opts.LockKey).Scan(&got); err != nil {
		closeConn(conn)
		return false, nil, err
	}
	return got, conn, nil
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx) // best effort: a broken session is gone already
}

var errLockLost = errors.New("projector lock session lost")

// runActive applies batches while ctx lasts and lock stays alive.
func (r *Runner) runActive(ctx context.Context, lock *pgx.Conn) error {
	if err := r.withBatchContext(ctx, r.loadCheckpoints); err != nil {
		return err
	}
	poll := r.opts.MinPoll
	lastCheck := time.Now()
	failures := 0
	for ctx.Err() == nil {
		if time.Since(lastCheck) >= r.opts.StandbyRetry {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := lock.Ping(pctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					return fmt.Errorf("%w: %w", errLockLost, err)
				}
				continue // shutting down: the loop ends
			}
			lastCheck = time.Now()
		}
		var res stepResult
		// After a failure, batches of one event until one succeeds: the
		// failing batch then is the failing event, and the log names it.
		limit := r.opts.BatchSize
		if failures > 0 {
			limit = 1
		}
		err := r.withBatchContext(ctx, func(bctx context.Context) error {
			var err error
			res, err = r.step(bctx, limit)
			return err
		})
		if err != nil {
			if errors.Is(err, ErrCheckpointMoved) {
				return err
			}
			failures++
			r.batchFailed(ctx, res, err, failures)
			if isFatal(err) {
				return err
			}
			sleep(ctx, min(time.Duration(failures)*r.opts.StandbyRetry/4, 5*time.Second))
			continue
		}
		if failures > 0 {
			r.log.Info().Int("failures", failures).Msg("projector batch applied again after failures")
			r.mu.Lock()
			r.failing = Failure{}
			r.mu.Unlock()
		}
		failures = 0
		switch {
		case res.full:
			poll = r.opts.MinPoll
			continue
		case res.events > 0:
			poll = r.opts.MinPoll
			sleep(ctx, poll)
		case res.heldBack:
			// Committed events wait for an older transaction, which usually ends
			// within milliseconds: backing off to MaxPoll here is what made the
			// lag's tail, so look again soon (a long transaction is logged by
			// watchHeldBack, and costs only a cheap query per few ms).
			poll = min(2*poll, 4*r.opts.MinPoll)
			sleep(ctx, poll)
		default:
			sleep(ctx, poll)
			poll = min(2*poll, r.opts.MaxPoll)
		}
	}
	return nil
}

// withBatchContext runs fn under a context that outlives ctx's cancellation
// by at most BatchTimeout, so that a batch in flight at shutdown commits.
func (r *Runner) withBatchContext(ctx context.Context, fn func(context.Context) error) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.BatchTimeout)
	defer cancel()
	return fn(bctx)
}

// CatchUp applies batches until every event committed before it was called
// is applied (and no older transaction still holds some back), then returns.
// It does not take the lock: it is for tests and one-shot tools. Beside a
// running projector it is still safe, and fails with ErrCheckpointMoved when
// the other applies a batch first. Errors: as Run's, plus transient ones.
func (r *Runner) CatchUp(ctx context.Context) error {
	if err := r.loadCheckpoints(ctx); err != nil {
		return err
	}
	poll := r.opts.MinPoll
	for {
		res, err := r.step(ctx, r.opts.BatchSize)
		if err != nil {
			return err
		}
		if res.full {
			continue
		}
		if !res.heldBack {
			return nil
		}
		if err := sleepErr(ctx, poll); err != nil {
			return err
		}
		poll = min(2*poll, r.opts.MaxPoll)
	}
}

// loadCheckpoints reads the projections' checkpoints, creating missing rows
// at the start of the event store.
func (r *Runner) loadCheckpoints(ctx context.Context) error {
	names := make([]string, len(r.opts.Projections))
	for i, p := range r.opts.Projections {
		names[i] = p.Name()
	}
	if _, err := r.read.Exec(ctx, `INSERT INTO `+readmodel.CheckpointTable+` (projection, transaction_id, global_position)
SELECT unnest($1::text[]), '0'::xid8, 0 ON CONFLICT (projection) DO NOTHING`, names); err != nil {
		return fmt.Errorf("create checkpoints: %w", err)
	}
	r.clearCaches()
	cps, stamps, err := readCheckpointRows(ctx, r.read)
	if err != nil {
		return err
	}
	high := make(map[string]mark, len(names))
	for _, n := range names {
		cp := cps[n]
		at, _, err := r.tailer.RecordedAt(ctx, cp)
		if err != nil {
			return err
		}
		high[n] = mark{pos: cp.GlobalPosition, at: at}
	}
	r.mu.Lock()
	r.checkpoints, r.stamps, r.high, r.loaded = cps, stamps, high, true
	r.mu.Unlock()
	for _, n := range names {
		r.log.Info().Str("projection", n).Uint64("transaction_id", cps[n].TransactionID).
			Int64("global_position", cps[n].GlobalPosition).Msg("projection checkpoint loaded")
	}
	return nil
}

func readCheckpoints(ctx context.Context, q Queryer) (map[string]eventlog.Position, error) {
	cps, _, err := readCheckpointRows(ctx, q)
	return cps, err
}

// readCheckpointRows returns each projection's position and its row's updated_at.
func readCheckpointRows(ctx context.Context, q Queryer) (map[string]eventlog.Position, map[string]time.Time, error) {
	rows, err := q.Query(ctx, `SELECT projection, transaction_id, global_position, updated_at FROM `+readmodel.CheckpointTable)
	if err != nil {
		return nil, nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	cps, stamps := map[string]eventlog.Position{}, map[string]time.Time{}
	for rows.Next() {
		var (
			name  string
			p     eventlog.Position
			stamp time.Time
		)
		if err := rows.Scan(&name, &p.TransactionID, &p.GlobalPosition, &stamp); err != nil {
			return nil, nil, fmt.Errorf("read checkpoints: %w", err)
		}
		cps[name], stamps[name] = p, stamp
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return cps, stamps, nil
}

type stepResult struct {
	events   int  // read (and applied where due)
	full     bool // the read returned as many events as asked: more are waiting
	heldBack bool // committed events wait for an older transaction
	// first is the batch's first event and head the head read with it, also
	// when applying the batch failed.
	first *eventlog.RecordedEvent
	head  *eventlog.Head
}

// step reads up to limit events after the lowest checkpoint and applies them.
// When applying fails, the result still says which events were read.
func (r *Runner) step(ctx context.Context, limit int) (stepResult, error) {
	r.mu.Lock()
	if !r.loaded {
		r.mu.Unlock()
		return stepResult{}, errors.New("projection runner: checkpoints not loaded")
	}
	from := r.checkpoints[r.opts.Projections[0].Name()]
	for _, p := range r.opts.Projections[1:] {
		if cp := r.checkpoints[p.Name()]; cp.Less(from) {
			from = cp
		}
	}
	r.mu.Unlock()

	start := time.Now()
	tb, err := r.tailer.Read(ctx, from, limit)
	if err != nil {
		return stepResult{}, err
	}
	res := stepResult{events: len(tb.Events), full: len(tb.Events) == limit, heldBack: tb.HeldBack}
	r.watchHeldBack(ctx, tb)
	if len(tb.Events) > 0 {
		res.first, res.head = &tb.Events[0], &tb.Head
		if err := r.apply(ctx, tb.Events); err != nil {
			return res, err
		}
		r.m.batchSize.Observe(float64(len(tb.Events)))
		r.m.batchDuration.Observe(time.Since(start).Seconds())
		if r.afterApply != nil {
			r.afterApply(tb.Events)
		}
	}
	r.observeLag(tb.Head)
	return res, nil
}

// checkBatch refuses a batch in which a stream's versions are not contiguous.
func checkBatch(events []eventlog.RecordedEvent) error {
	last := map[uuid.UUID]int{}
	for _, e := range events {
		if v, ok := last[e.StreamID]; ok && e.Version != v+1 {
			return &ContiguityError{Projection: "batch", StreamID: e.StreamID, Have: v, Got: e.Version, Position: eventlog.PositionOf(e)}
		}
		last[e.StreamID] = e.Version
	}
	return nil
}

func (r *Runner) clearCaches() {
	for _, c := range r.caches {
		c.Clear()
	}
}

// part is one projection's share of a batch.
type part struct {
	p        Projection
	from, to eventlog.Position
	stamp    time.Time // the checkpoint row's updated_at: read before, written after
	events   []eventlog.RecordedEvent
	w        Batch
}

// casCheckpoint moves a checkpoint only from where this Runner left it: the
// position, and the updated_at it wrote, so that any other change to the row
// (another instance, a reset, a rebuild swapping tables in) is noticed even
// if it left the position where it was. It runs first in the batch's
// transaction: its row lock makes a second instance wait for the first's
// commit and then find the checkpoint moved, before it has written anything
// (so no duplicate-key error either).
const casCheckpoint = `UPDATE ` + readmodel.CheckpointTable + `
SET transaction_id = $1::xid8, global_position = $2, updated_at = clock_timestamp()
WHERE projection = $3 AND transaction_id = $4::xid8 AND global_position = $5 AND updated_at = $6
RETURNING updated_at`

// apply writes events to every projection whose checkpoint is before them, in
// one read-database transaction with the checkpoints.
func (r *Runner) apply(ctx context.Context, events []eventlog.RecordedEvent) error {
	err := r.applyOnce(ctx, events)
	if err != nil {
		// Whatever failed, the cached states may not be what the tables hold.
		r.clearCaches()
	}
	return err
}

func (r *Runner) applyOnce(ctx context.Context, events []eventlog.RecordedEvent) error {
	if err := checkBatch(events); err != nil {
		return err
	}
	r.mu.Lock()
	var parts []*part
	for _, p := range r.opts.Projections {
		cp := r.checkpoints[p.Name()]
		i := 0
		for i < len(events) && !cp.Less(eventlog.PositionOf(events[i])) {
			i++
		}
		if i == len(events) {
			continue
		}
		evs := events[i:]
		parts = append(parts, &part{p: p, from: cp, to: eventlog.PositionOf(evs[len(evs)-1]), stamp: r.stamps[p.Name()], events: evs, w: p.Batch(evs, Live, r.caches[p.Name()])})
	}
	r.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}

	tx, err := r.read.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin batch: %w", err)
	}
	// After Commit, Rollback is a no-op; after a failure the error that matters is returned.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	var moved []string
	b := &pgx.Batch{}
	// The read tables are derived and their checkpoints commit with them: a
	// batch lost to a server crash before its WAL flush is lost with its
	// checkpoint and applied again. So this commit need not wait for the flush,
	// which takes it out of the projection lag and leaves the WAL's fsyncs to
	// the appends that do need them.
	b.Queue("SET LOCAL synchronous_commit = off")
	for _, pt := range parts {
		b.Queue(casCheckpoint, pt.to.TransactionID, pt.to.GlobalPosition, pt.p.Name(), pt.from.TransactionID, pt.from.GlobalPosition, pt.stamp).
			QueryRow(func(row pgx.Row) error {
				err := row.Scan(&pt.stamp)
				if errors.Is(err, pgx.ErrNoRows) {
					moved = append(moved, pt.p.Name())
					return nil
				}
				return err
			})
	}
	for _, pt := range parts {
		pt.w.QueueLoad(b)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("batch up to %s: %w", parts[0].to, err)
	}
	if len(moved) > 0 {
		return fmt.Errorf("%w: %s", ErrCheckpointMoved, strings.Join(moved, ", "))
	}
	b = &pgx.Batch{}
	for _, pt := range parts {
		if err := pt.w.Fold(); err != nil {
			return err
		}
		pt.w.QueueWrite(b)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("batch up to %s: %w", parts[0].to, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit batch up to %s: %w", parts[0].to, err)
	}

	r.mu.Lock()
	for _, pt := range parts {
		pt.w.Committed()
		r.checkpoints[pt.p.Name()] = pt.to
		r.stamps[pt.p.Name()] = pt.stamp
		h := r.high[pt.p.Name()]
		for _, e := range pt.events {
			if e.GlobalPosition > h.pos {
				h = mark{pos: e.GlobalPosition, at: e.RecordedAt}
			}
		}
		r.high[pt.p.Name()] = h
	}
	r.mu.Unlock()
	for _, pt := range parts {
		r.m.eventsApplied.WithLabelValues(pt.p.Name()).Add(float64(len(pt.events)))
	}
	return nil
}

// batchFailed makes a failed batch seen: it is counted, the lag is measured
// from the head of the event store (the batch that failed measured nothing),
// and the log names the event the batch started with.
func (r *Runner) batchFailed(ctx context.Context, res stepResult, err error, failures int) {
	r.m.batchFailures.Inc()
	ev := r.log.Error().Err(err).Int("failures", failures)
	event := ""
	var up *eventlog.UpcastError
	switch {
	case res.first != nil:
		e := res.first
		event = fmt.Sprintf("%s, stream %s version %d (%s)", eventlog.PositionOf(*e), e.StreamID, e.Version, e.EventType)
		ev = ev.Uint64("transaction_id", e.TransactionID).Int64("global_position", e.GlobalPosition).
			Str("stream_id", e.StreamID.String()).Int("version", e.Version).Str("event_type", e.EventType).Int("batch_events", res.events)
	case errors.As(err, &up):
		event = fmt.Sprintf("position %d, stream %s version %d", up.GlobalPosition, up.StreamID, up.Version)
		ev = ev.Int64("global_position", up.GlobalPosition).Str("stream_id", up.StreamID.String()).Int("version", up.Version)
	}
	r.mu.Lock()
	if r.failing.Count == 0 {
		r.failing.Since = time.Now()
	}
	r.failing.Count = failures
	r.failing.Event = event
	r.mu.Unlock()
	if res.head != nil {
		r.observeLag(*res.head)
	} else {
		// The read failed, so no head came with it; ask for it alone.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		head, herr := r.tailer.Head(hctx)
		cancel()
		if herr == nil {
			r.observeLag(head)
		}
	}
	switch {
	case isFatal(err):
		ev.Msg("projector batch failed; it cannot succeed on retry")
	case failures == 1 && res.events > 1:
		ev.Msg("projector batch failed; retrying one event at a time to find the failing one")
	default:
		ev.Msg("projector batch failed; retrying")
	}
}

// observeLag sets each projection's lag behind head. While batches fail, the
// lag in seconds is at least the time since the first failure, so that it
// keeps rising even when nothing new is appended.
func (r *Runner) observeLag(head eventlog.Head) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var failingFor float64
	if r.failing.Count > 0 {
		failingFor = time.Since(r.failing.Since).Seconds()
	}
	for _, p := range r.opts.Projections {
		h := r.high[p.Name()]
		behind := max(0, head.GlobalPosition-h.pos)
		r.m.lagPositions.WithLabelValues(p.Name()).Set(float64(behind))
		switch {
		case behind == 0:
			r.m.lagSeconds.WithLabelValues(p.Name()).Set(0)
		case !h.at.IsZero():
			r.m.lagSeconds.WithLabelValues(p.Name()).Set(max(0, head.RecordedAt.Sub(h.at).Seconds(), failingFor))
		case failingFor > 0:
			r.m.lagSeconds.WithLabelValues(p.Name()).Set(failingFor)
		}
	}
}

// watchHeldBack logs, at most every HeldBackWarning, the sessions whose open
// transaction has kept committed events from the reader for that long.
func (r *Runner) watchHeldBack(ctx context.Context, tb eventlog.TailBatch) {
	if !tb.HeldBack {
		r.heldBackSince = time.Time{}
		return
	}
	now := time.Now()
	if r.heldBackSince.IsZero() {
		r.heldBackSince = now
	}
	if now.Sub(r.heldBackSince) < r.opts.HeldBackWarning || now.Sub(r.heldBackLogged) < r.opts.HeldBackWarning {
		return
	}
	r.heldBackLogged = now
	ev := r.log.Warn().Uint64("xmin", tb.Xmin).Dur("held_back_for", now.Sub(r.heldBackSince))
	if hs, err := r.tailer.HoldingTransactions(ctx, tb.Xmin); err == nil {
		for _, h := range hs {
			ev = ev.Int("holding_pid", h.PID).Str("holding_database", h.Database).Str("holding_application", h.ApplicationName).
				Str("holding_state", h.State).Dur("holding_transaction_age", h.TransactionAge).Str("holding_query", h.Query)
			break // the oldest is the one to end
		}
	}
	ev.Msg("projector held back: an open transaction keeps committed events from being read; end it, and keep transactions short")
}

func sleep(ctx context.Context, d time.Duration) { _ = sleepErr(ctx, d) }

func sleepErr(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
