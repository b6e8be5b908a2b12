// Package publish sends every event of the store to NATS JetStream as a
// CloudEvent (DESIGN §8). The publisher is one more checkpointed consumer of
// the gap-safe tail, running in the active projector only: it publishes in
// tail order and moves its checkpoint only past events the broker
// acknowledged.
//
// Exactly once: each message carries Nats-Msg-Id = event_id, so the broker
// drops a publish repeated within its duplicate window; and every publish
// expects the stream's last sequence to be the one before it, so a message
// lost in flight makes every later one fail instead of leaving a gap. After
// any failure the publisher reads the stream's last message back and resumes
// right after it (its checkpoint may lag the stream: it is written after the
// acknowledgements, and a crash can fall between). Since one account's
// events are in version order in the tail, they are in the stream too.
package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/projection"
	"github.com/evbank/bank/internal/readmodel"
)

// CheckpointName is the publisher's row in the checkpoint table. It is not a
// projection: `projector rebuild` never resets it, so a rebuild re-publishes
// nothing.
const CheckpointName = "publisher"

// Options configure a Publisher. Zero values take the defaults shown.
type Options struct {
	// URL of the NATS server(s), comma-separated (required).
	URL string
	// Stream is the JetStream stream's name (BANK_EVENTS).
	Stream string
	// SubjectPrefix starts every subject (bank).
	SubjectPrefix string
	// Source is the CloudEvents source (/bank).
	Source string
	// Window is the most publishes awaiting their acknowledgement (512).
	Window int
	// BatchSize is the most events read from the tail at once; the checkpoint
	// is written once per batch (2000).
	BatchSize int
	// AckTimeout bounds the wait for one acknowledgement (5 s).
	AckTimeout time.Duration
	// MinPoll, MaxPoll: the pause after a read that found nothing starts at
	// MinPoll (1 ms) and doubles up to MaxPoll (20 ms): the publisher's lag at a
	// steady rate is about the poll.
	MinPoll, MaxPoll time.Duration
	// MaxBackoff is the longest pause between attempts while the broker or a
	// database fails (5 s); it starts at 100 ms and doubles.
	MaxBackoff time.Duration
	// Duplicates is the duplicate window of a stream the publisher creates (2 min).
	Duplicates time.Duration
	// Metrics are the projector's: the publisher's lag is
	// projector_lag_seconds{projection="publisher"}.
	Metrics *projection.Metrics
	Log     zerolog.Logger
}

func (o *Options) defaults() error {
	if o.URL == "" {
		return errors.New("publisher: no NATS URL")
	}
	setDefault(&o.Stream, "BANK_EVENTS")
	setDefault(&o.SubjectPrefix, "bank")
	setDefault(&o.Source, "/bank")
	setDefault(&o.Window, 512)
	setDefault(&o.BatchSize, 2000)
	setDefault(&o.AckTimeout, 5*time.Second)
	setDefault(&o.MinPoll, time.Millisecond)
	setDefault(&o.MaxPoll, 20*time.Millisecond)
	setDefault(&o.MaxBackoff, 5*time.Second)
	setDefault(&o.Duplicates, 2*time.Minute)
	if o.Duplicates < 2*time.Minute {
		return fmt.Errorf("publisher: duplicate window %s is below 2m", o.Duplicates)
	}
	if o.Metrics == nil {
		m, err := projection.NewMetrics(nil)
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

// Status values of State.
const (
	StatusStarting    = "starting"
	StatusStandby     = "standby"
	StatusPublishing  = "publishing"
	StatusUnreachable = "broker unreachable"
	StatusRefused     = "refused"
	StatusFailing     = "failing"
)

// State is what /readyz says of the publisher, in words.
type State struct {
	Status string `json:"status"`
	// Detail says why, when not publishing; never a URL or credentials.
	Detail string    `json:"detail,omitempty"`
	Since  time.Time `json:"since"`
	// Published counts the events this process had acknowledged.
	Published uint64 `json:"published"`
}

// errRefused marks a stream the publisher will not use; the detail says why.
type errRefused struct{ reason string }

func (e *errRefused) Error() string { return e.reason }

// Publisher publishes the event store to JetStream. Run it once; State may be
// called from any goroutine.
type Publisher struct {
	tailer eventlog.Tailer
	read   *pgxpool.Pool
	opts   Options
	log    zerolog.Logger

	mu    sync.Mutex
	state State

	// Owned by Run's goroutine.
	js     jetstream.JetStream
	nc     *nats.Conn
	synced bool
	pos    eventlog.Position // the last event the stream holds
	seq    uint64            // the stream's last sequence
	high   struct {
		pos int64
		at  time.Time
	}
	failingSince time.Time
	lastHead     eventlog.Head // the head last read, for the lag between reads
}

// New returns a Publisher reading the events with tailer and keeping its
// checkpoint in read (the read database's checkpoint table).
func New(tailer eventlog.Tailer, read *pgxpool.Pool, opts Options) (*Publisher, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	opts.Metrics.SetLag(CheckpointName, 0, 0)
	return &Publisher{tailer: tailer, read: read, opts: opts, log: opts.Log.With().Str("component", "publisher").Logger(),
		state: State{Status: StatusStarting, Since: time.Now()}}, nil
}

// State reports what the publisher is doing.
func (p *Publisher) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

func (p *Publisher) setState(status, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Status != status || p.state.Detail != detail {
		p.state.Status, p.state.Detail, p.state.Since = status, detail, time.Now()
	}
}

// Run publishes while active() reports that this projector holds the lock,
// until ctx ends. A broker or database failure stops only the publisher: it
// retries with back-off and says so in State, and its lag keeps rising. It
// returns when ctx ends, nil.
func (p *Publisher) Run(ctx context.Context, active func() bool) error {
	nc, err := nats.Connect(p.opts.URL,
		nats.Name("bank-projector publisher"),
		// Keep trying, also when the broker is down at start: an outage stops
		// the publisher, never the projector.
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		// No buffering while disconnected: a publish then fails at once and
		// the publisher resumes from the stream, rather than flushing a
		// buffer whose front may have been lost with the old connection.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(5*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				p.log.Warn().Err(err).Msg("publisher: disconnected from the broker")
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { p.log.Info().Msg("publisher: reconnected to the broker") }),
	)
	if err != nil {
		// Only a malformed URL or option fails here (RetryOnFailedConnect).
		p.setState(StatusRefused, "NATS_URL cannot be used: "+err.Error())
		p.log.Error().Err(err).Msg("publisher: cannot connect; projections go on, nothing is published")
		<-ctx.Done()
		return nil
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(p.opts.Window), jetstream.WithPublishAsyncTimeout(p.opts.AckTimeout))
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	p.nc, p.js = nc, js

	poll := p.opts.MinPoll
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if !active() {
			p.synced = false
			p.setState(StatusStandby, "another projector instance is active")
			sleep(ctx, 250*time.Millisecond)
			continue
		}
		n, err := p.cycle(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.synced = false
			backoff = min(max(2*backoff, 100*time.Millisecond), p.opts.MaxBackoff)
			var refused *errRefused
			if errors.As(err, &refused) {
				// An operator must change the stream or the settings; look
				// again now and then, without filling the log.
				backoff = max(backoff, p.opts.MaxBackoff)
			}
			p.failed(ctx, err)
			// Back off, refreshing the lag meanwhile: it must keep rising
			// during an outage even when nothing new is appended.
			for until := time.Now().Add(backoff); ctx.Err() == nil && time.Now().Before(until); {
				sleep(ctx, min(time.Until(until), 250*time.Millisecond))
				p.observeLag(p.lastHead)
			}
			continue
		}
		if !p.failingSince.IsZero() {
			p.log.Info().Dur("after", time.Since(p.failingSince)).Msg("publisher: publishing again")
			p.failingSince = time.Time{}
		}
		backoff = 0
		p.setState(StatusPublishing, "")
		switch {
		case n == p.opts.BatchSize:
			poll = p.opts.MinPoll
		case n > 0:
			poll = p.opts.MinPoll
			sleep(ctx, poll)
		default:
			sleep(ctx, poll)
			poll = min(2*poll, p.opts.MaxPoll)
		}
	}
	p.setState(StatusStandby, "stopped")
	return nil
}

// cycle syncs with the stream when needed, then publishes one batch.
func (p *Publisher) cycle(ctx context.Context) (int, error) {
	if !p.nc.IsConnected() {
		return 0, errUnreachable
	}
	if !p.synced {
		if err := p.sync(ctx); err != nil {
			return 0, err
		}
	}
	return p.step(ctx)
}

var errUnreachable = errors.New("not connected to the broker")

// failed records a failure: state, log, and lag measured from the head of
// the event store, at least the time since the failures began.
func (p *Publisher) failed(ctx context.Context, err error) {
	first := p.failingSince.IsZero()
	if first {
		p.failingSince = time.Now()
	}
	var refused *errRefused
	switch {
	case errors.As(err, &refused):
		p.setState(StatusRefused, refused.reason)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		(p.nc.IsConnected() && errors.Is(err, nats.ErrNoResponders)):
		// Connected, yet nobody serves the JetStream API.
		p.setState(StatusFailing, "the broker answers but has no JetStream (run nats-server with -js); retrying")
	case !p.nc.IsConnected() || errors.Is(err, errUnreachable) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse):
		p.setState(StatusUnreachable, "the broker does not answer; retrying, events wait in the event store")
	default:
		p.setState(StatusFailing, "publishing fails; retrying (see the log)")
	}
	ev := p.log.Warn()
	if !first {
		ev = p.log.Debug()
	}
	ev.Err(err).Str("status", p.State().Status).Msg("publisher: cannot publish; projections go on, retrying with back-off")
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if head, herr := p.tailer.Head(hctx); herr == nil {
		p.observeLag(head)
	}
}

// sync finds (or creates) the stream, checks it, and sets where to resume:
// after the last event the stream holds, or after the checkpoint when that
// is further (a stream purged by an operator is not refilled).
func (p *Publisher) sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := p.js.Stream(ctx, p.opts.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = p.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        p.opts.Stream,
			Description: "every event of the bank's event store, as CloudEvents",
			Subjects:    []string{p.opts.SubjectPrefix + ".>"},
			Storage:     jetstream.FileStorage,
			Duplicates:  p.opts.Duplicates,
		})
		switch {
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			stream, err = p.js.Stream(ctx, p.opts.Stream) // another instance made it meanwhile
		case err != nil && strings.Contains(err.Error(), "overlap"):
			return &errRefused{reason: fmt.Sprintf("stream %s cannot be created: subjects %s.> overlap another stream's", p.opts.Stream, p.opts.SubjectPrefix)}
		case err == nil:
			p.log.Info().Str("stream", p.opts.Stream).Str("subjects", p.opts.SubjectPrefix+".>").Dur("duplicates", p.opts.Duplicates).Msg("publisher: stream created")
		}
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", p.opts.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", p.opts.Stream, err)
	}
	// What the publisher sends: <prefix>.account.<stream_id>.<event_type>.
	want := p.opts.SubjectPrefix + ".account.*.*"
	if !coversAny(info.Config.Subjects, want) {
		return &errRefused{reason: fmt.Sprintf("stream %s exists with subjects [%s], which do not cover %s.>: nothing is published until the stream's subjects include it (or NATS_STREAM / NATS_SUBJECT_PREFIX change)",
			p.opts.Stream, strings.Join(info.Config.Subjects, " "), p.opts.SubjectPrefix)}
	}
	if info.Config.Duplicates < 2*time.Minute {
		p.log.Warn().Str("stream", p.opts.Stream).Dur("duplicates", info.Config.Duplicates).
			Msg("publisher: the stream's duplicate window is below 2m; a publish repeated after a crash may be stored twice")
	}
	seq := info.State.LastSeq
	var streamPos eventlog.Position
	if info.State.Msgs > 0 {
		last, err := stream.GetLastMsgForSubject(ctx, p.opts.SubjectPrefix+".account.>")
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return fmt.Errorf("stream %s: last message: %w", p.opts.Stream, err)
		default:
			pos, ok := positionOf(last.Header)
			if !ok {
				return &errRefused{reason: fmt.Sprintf("the last message of stream %s (sequence %d) has no %s/%s headers: it was not published by this service, so where to resume is unknown", p.opts.Stream, last.Sequence, HeaderTransactionID, HeaderGlobalPosition)}
			}
			streamPos = pos
		}
	}
	cp, err := p.checkpoint(ctx)
	if err != nil {
		return err
	}
	from := cp
	if from.Less(streamPos) {
		from = streamPos
	}
	at, _, err := p.tailer.RecordedAt(ctx, from)
	if err != nil {
		return err
	}
	p.pos, p.seq, p.synced = from, seq, true
	p.high.pos, p.high.at = from.GlobalPosition, at
	p.log.Info().Str("stream", p.opts.Stream).Uint64("stream_last_sequence", seq).
		Stringer("stream_last_event", streamPos).Stringer("checkpoint", cp).Stringer("resume_after", from).
		Msg("publisher: resuming after the last event the stream holds")
	return nil
}

// checkpoint reads the publisher's checkpoint, creating it at the start.
func (p *Publisher) checkpoint(ctx context.Context) (eventlog.Position, error) {
	var cp eventlog.Position
	if _, err := p.read.Exec(ctx, `INSERT INTO `+readmodel.CheckpointTable+` (projection, transaction_id, global_position)
VALUES ($1, '0'::xid8, 0) ON CONFLICT (projection) DO NOTHING`, CheckpointName); err != nil {
		return cp, fmt.Errorf("publisher checkpoint: %w", err)
	}
	err := p.read.QueryRow(ctx, `SELECT transaction_id, global_position FROM `+readmodel.CheckpointTable+` WHERE projection = $1`, CheckpointName).
		Scan(&cp.TransactionID, &cp.GlobalPosition)
	if err != nil {
		return cp, fmt.Errorf("publisher checkpoint: %w", err)
	}
	return cp, nil
}

// saveCheckpoint moves the checkpoint forward to pos, never back: the stream
// is the truth, the checkpoint only saves reading it when it is ahead.
func (p *Publisher) saveCheckpoint(ctx context.Context, pos eventlog.Position) error {
	// Lost with a server crash, a checkpoint is only behind: the stream says
	// where to resume. So the commit need not wait for the WAL flush.
	tx, err := p.read.Begin(ctx)
	if err != nil {
		return fmt.Errorf("publisher checkpoint: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return fmt.Errorf("publisher checkpoint: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE `+readmodel.CheckpointTable+`
SET transaction_id = $2::xid8, global_position = $3, updated_at = clock_timestamp()
WHERE projection = $1 AND (transaction_id, global_position) < ($2::xid8, $3)`, CheckpointName, pos.TransactionID, pos.GlobalPosition); err != nil {
		return fmt.Errorf("publisher checkpoint: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("publisher checkpoint: %w", err)
	}
	return nil
}

// step reads a batch after the last published event and publishes it, at
// most Window unacknowledged at a time, in tail order. It returns how many
// events were read. On a failure the acknowledged prefix counts, and the
// caller resyncs from the stream: later events may or may not be stored,
// and only the stream knows.
func (p *Publisher) step(ctx context.Context) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	tb, err := p.tailer.Read(rctx, p.pos, p.opts.BatchSize)
	cancel()
	if err != nil {
		return 0, err
	}
	if len(tb.Events) == 0 {
		p.observeLag(tb.Head)
		return 0, nil
	}
	futs := make([]jetstream.PubAckFuture, 0, len(tb.Events))
	acked := 0
	wait := func() error {
		select {
		case <-futs[acked].Ok():
			acked++
			return nil
		case err := <-futs[acked].Err():
			return fmt.Errorf("publish of the event at %s: %w", eventlog.PositionOf(tb.Events[acked]), err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var pubErr error
	for i, e := range tb.Events {
		if len(futs)-acked >= p.opts.Window {
			if pubErr = wait(); pubErr != nil {
				break
			}
		}
		m, err := message(p.opts.SubjectPrefix, p.opts.Source, e)
		if err != nil {
			pubErr = err
			break
		}
		// The sequence expected before this message: the stream's last plus
		// the messages of this batch before it. A message lost in flight
		// makes every later one fail rather than land after a gap.
		f, err := p.js.PublishMsgAsync(m, jetstream.WithExpectStream(p.opts.Stream), jetstream.WithExpectLastSequence(p.seq+uint64(i)))
		if err != nil {
			pubErr = fmt.Errorf("publish of the event at %s: %w", eventlog.PositionOf(e), err)
			break
		}
		futs = append(futs, f)
	}
	for pubErr == nil && acked < len(futs) {
		pubErr = wait()
	}
	if acked > 0 {
		done := tb.Events[:acked]
		last := done[len(done)-1]
		p.pos = eventlog.PositionOf(last)
		p.seq += uint64(acked)
		for _, e := range done {
			if e.GlobalPosition > p.high.pos {
				p.high.pos, p.high.at = e.GlobalPosition, e.RecordedAt
			}
		}
		p.mu.Lock()
		p.state.Published += uint64(acked)
		p.mu.Unlock()
		p.opts.Metrics.AddApplied(CheckpointName, acked)
		p.observeLag(tb.Head)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := p.saveCheckpoint(cctx, p.pos)
		cancel()
		if err != nil && pubErr == nil {
			pubErr = err
		}
	}
	if pubErr != nil {
		// Let the publishes still in flight settle before the stream is read
		// again, so that the resync sees them (bounded by the ack timeout).
		select {
		case <-p.js.PublishAsyncComplete():
		case <-time.After(p.opts.AckTimeout):
		case <-ctx.Done():
		}
		return acked, pubErr
	}
	return len(tb.Events), nil
}

// observeLag sets the publisher's lag behind head, as a projection's is
// measured; while publishing fails, at least the time since it began.
func (p *Publisher) observeLag(head eventlog.Head) {
	p.lastHead = head
	var failingFor float64
	if !p.failingSince.IsZero() {
		failingFor = time.Since(p.failingSince).Seconds()
	}
	behind := max(0, head.GlobalPosition-p.high.pos)
	secs := 0.0
	switch {
	case behind == 0:
	case !p.high.at.IsZero():
		secs = max(0, head.RecordedAt.Sub(p.high.at).Seconds(), failingFor)
	default:
		secs = failingFor
	}
	p.opts.Metrics.SetLag(CheckpointName, behind, secs)
}

// coversAny reports whether one of the patterns matches every subject that
// want (which may hold * wildcards) matches.
func coversAny(patterns []string, want string) bool {
	for _, pat := range patterns {
		if covers(pat, want) {
			return true
		}
	}
	return false
}

func covers(pattern, want string) bool {
	pt, wt := strings.Split(pattern, "."), strings.Split(want, ".")
	for i, tok := range pt {
		if tok == ">" {
			return i < len(wt)
		}
		if i >= len(wt) {
			return false
		}
		switch {
		case tok == "*":
			if wt[i] == ">" {
				return false
			}
		case tok != wt[i]:
			return false
		}
	}
	return len(pt) == len(wt)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
