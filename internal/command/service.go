package command

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// Observer is told about outcomes worth counting; metrics implement it.
type Observer interface {
	CommandFinished(command, outcome string, d time.Duration)
	ConflictRetried(command string)
	IdempotentReplay(command string)
	// Appended counts one append statement: the commands it stored (more
	// than one when queued commands were grouped) and their events.
	Appended(commands, events int)
	// TransferRecovered counts a transfer the recovery loop finished, by
	// how it ended (completed or returned).
	TransferRecovered(status string)
}

type nopObserver struct{}

func (nopObserver) CommandFinished(string, string, time.Duration) {}
func (nopObserver) ConflictRetried(string)                        {}
func (nopObserver) IdempotentReplay(string)                       {}
func (nopObserver) Appended(int, int)                             {}
func (nopObserver) TransferRecovered(string)                      {}

// DefaultCacheSize is the COMMAND_CACHE_SIZE an api runs with unless told otherwise.
const DefaultCacheSize = 100_000

// Config tunes the service; zero values take the defaults, except CacheSize.
type Config struct {
	// DefaultCurrency is the currency of accounts opened without one
	// (domain.FallbackCurrency).
	DefaultCurrency domain.Currency
	// MaxAttempts bounds the decide-append loop under contention.
	MaxAttempts int
	// CacheSize is how many accounts' states the service keeps in memory
	// between commands, sparing their loads; 0 (or less) keeps none, as
	// COMMAND_CACHE_SIZE=0 does (DefaultCacheSize is the usual size).
	CacheSize int
	// LockWait bounds how long a command waits for the commands queued
	// before it on the same account in this process (0: 5 s). The request's
	// deadline, when sooner, bounds it too.
	LockWait time.Duration
	// MaxGroup bounds how many queued commands on one account are appended
	// together (0: 64; 1 turns group commit off).
	MaxGroup int
	Now      func() time.Time
	Observer Observer
}

// Service runs the account commands.
type Service struct {
	store           EventStore
	defaultCurrency domain.Currency
	maxAttempts     int
	now             func() time.Time
	obs             Observer
	queues          *streamQueues
	cache           *aggregates
}

// NewService returns a Service over store.
func NewService(store EventStore, cfg Config) *Service {
	s := &Service{
		store: store, defaultCurrency: cfg.DefaultCurrency, maxAttempts: cfg.MaxAttempts,
		now: cfg.Now, obs: cfg.Observer, queues: newStreamQueues(cfg.LockWait, cfg.MaxGroup),
	}
	s.cache = newAggregates(cfg.CacheSize)
	if s.defaultCurrency.IsZero() {
		s.defaultCurrency = domain.FallbackCurrency
	}
	if s.maxAttempts <= 0 {
		s.maxAttempts = 20
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	return s
}

// Precondition is an If-Match: any existing account, or one of the listed
// versions (an empty list matches nothing).
type Precondition struct {
	Any      bool
	Versions []int
}

func (p *Precondition) matches(version int) bool {
	return p.Any || slices.Contains(p.Versions, version)
}

// Idempotency asks for a command's answer to be kept under a key and replayed
// to retries. Keep, the transport's, turns the outcome into that answer;
// keep=false means the outcome is not kept (nothing ran, so a retry may run it).
type Idempotency struct {
	Scope       IdempotencyScope
	Fingerprint []byte
	Keep        func(Outcome) (answer Answer, keep bool)
}

// Outcome is what a command came to, for the transport to answer: the
// account as the command left it, or the transfer as it stands, or the error
// that refused it.
type Outcome struct {
	Account  *domain.Account
	Transfer *TransferSaga
	Err      error
}

// Caller is who runs a command, for the ownership rule of DESIGN §6: a
// principal commands its own accounts; an admin any account.
type Caller struct {
	Principal string
	Admin     bool
}

// mayCommand reports whether the caller may act on account a (which exists).
func (c *Caller) mayCommand(a *domain.Account) bool {
	return c == nil || c.Admin || a.OwnerID() == c.Principal
}

// Options carry what a command needs beyond its own fields.
type Options struct {
	// Caller, when set, must own the account (or be an admin): another
	// owner's account is answered as an unknown one. Nil is the service
	// acting for itself (benchmarks, tests, internal recovery), never a client:
	// the HTTP transport always sets it.
	Caller      *Caller
	IfMatch     *Precondition
	Metadata    Metadata
	Idempotency *Idempotency

	// A transfer step appends through its own store call (with the saga's
	// row) and under event ids derived from the transfer.
	appendWith func(ctx context.Context, ap Append) error
	eventIDs   []uuid.UUID
}

// Result is a command's outcome. Answer is set when an idempotency record was
// written or replayed: the transport sends it as it is.
type Result struct {
	Account  *domain.Account
	Answer   Answer
	Replayed bool
}

// execute runs one command through its account's queue (see streamQueues):
// alone when the account is idle, else in a group with the commands queued
// beside it.
func (s *Service) execute(ctx context.Context, name string, id uuid.UUID, opts Options, decide func(a *domain.Account) error) (res Result, err error) {
	start := time.Now()
	defer func() { s.obs.CommandFinished(name, outcome(err, res), time.Since(start)) }()

	c := &queuedCommand{name: name, ctx: ctx, opts: opts, decide: decide}
	lead, err := s.queues.join(id, c)
	if err != nil {
		return Result{}, err
	}
	if lead {
		group := s.queues.take(id, c)
		s.runGroup(id, group)
		s.queues.handOff(id, group)
	}
	return c.res, c.err
}

// runGroup decides and appends a group of commands on one account and
// answers each member (res, err). A group of one runs under its command's
// context; a larger one under the latest of its members' deadlines, so that
// one member's request ending does not fail the others'.
func (s *Service) runGroup(id uuid.UUID, group []*queuedCommand) {
	ctx := group[0].ctx
	if len(group) > 1 {
		var cancel context.CancelFunc
		ctx, cancel = groupContext(group)
		defer cancel()
	}
	live := make([]*queuedCommand, 0, len(group))
	for _, c := range group {
		if err := c.ctx.Err(); err != nil && len(group) > 1 {
			c.err = err // a leader handed the queue after its request ended
			continue
		}
		live = append(live, c)
	}
	for attempt := 1; len(live) > 0; attempt++ {
		var counted bool
		if live, counted = s.attempt(ctx, id, live, attempt); !counted {
			attempt--
		}
	}
}

// groupContext is a context for the work of a group: its leader's values,
// and the latest deadline of its members (none when one has none).
func groupContext(group []*queuedCommand) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(group[0].ctx)
	var latest time.Time
	for _, c := range group {
		d, ok := c.ctx.Deadline()
		if !ok {
			return context.WithCancel(base)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(base, latest)
}

// decided is one member's share of a group's append.
type decided struct {
	c       *queuedCommand
	events  int
	account *domain.Account // as this member left it, for its result
	answer  Answer
	err     error // a rejection kept under the member's key
}

// attempt is one round of the decide-append loop: it answers the members it
// can and returns those still to run (more) and whether the round counts as
// an attempt (counted: else it is run again at once).
//
// It re-reads the stream and decides again when the append loses a race,
// unless If-Match pins the version, in which case a lost race is that
// client's version conflict. Members are decided in order on one aggregate,
// each seeing the ones before it; a member refused is answered alone and adds
// nothing to the append.
//
// The account usually comes from the in-memory cache (see aggregates). Only
// what the cache cannot get wrong is trusted from it: decisions that the
// store then accepts. A rejection, a failed If-Match or a lost append on a
// cached state sends the group back to the stream: it is decided again on
// a fresh load, at once and without counting as an attempt (MaxAttempts
// bounds what a client would have seen without the cache).
func (s *Service) attempt(ctx context.Context, id uuid.UUID, live []*queuedCommand, attempt int) (more []*queuedCommand, counted bool) {
	live, err := s.replayAll(ctx, live)
	if err != nil {
		return answerAll(live, err), true
	}
	if len(live) == 0 {
		return nil, true
	}
	a, cached, err := s.current(ctx, id)
	if err != nil {
		return answerAll(live, err), true
	}
	recheck := func() ([]*queuedCommand, bool) { s.cache.drop(id); return live, false }

	expected := a.Version()
	parts := make([]decided, 0, len(live))
	for _, c := range live {
		opts := c.opts
		if a.Exists() && !opts.Caller.mayCommand(a) {
			// Indistinguishable from an unknown account, so that ids leak
			// nothing; never kept under an idempotency key either.
			c.err = domain.ErrAccountNotFound
			continue
		}
		if p := opts.IfMatch; p != nil {
			if !a.Exists() {
				c.err = domain.ErrAccountNotFound
				continue
			}
			if !p.matches(a.Version()) {
				if cached {
					return recheck()
				}
				s.versionConflict(ctx, c)
				continue
			}
		}
		if n := len(parts); n > 0 && parts[n-1].account == nil {
			// The member before this one is answered with the account as it
			// left it; the last one's is the aggregate itself.
			parts[n-1].account = a.Copy()
		}
		before := len(a.Uncommitted())
		decideErr := c.decide(a)
		if decideErr != nil && cached {
			return recheck()
		}
		var answer Answer
		if idem := opts.Idempotency; idem != nil {
			if ans, keep := idem.Keep(Outcome{Account: a, Err: decideErr}); keep {
				answer = ans
			}
		}
		if decideErr != nil && answer == nil {
			c.err = decideErr
			continue
		}
		parts = append(parts, decided{c: c, events: len(a.Uncommitted()) - before, answer: answer, err: decideErr})
	}
	if len(parts) == 0 {
		return nil, true
	}

	appendErr := s.appendDecided(ctx, a, expected, parts)
	live = live[:0]
	for _, p := range parts {
		live = append(live, p.c)
	}
	switch {
	case appendErr == nil:
		a.MarkCommitted()
		s.cache.put(a)
		s.obs.Appended(len(parts), a.Version()-expected)
		for _, p := range parts {
			if p.account == nil {
				p.account = a
			}
			p.c.res, p.c.err = Result{Account: p.account, Answer: p.answer}, p.err
		}
		return nil, true
	case errors.Is(appendErr, ErrVersionTaken):
		s.cache.drop(id)
		// A member pinned to a version lost it: that client's conflict. The
		// version may have gone to a duplicate of that very request in
		// another process: then its answer is this one's.
		live = slices.DeleteFunc(live, func(c *queuedCommand) bool {
			if p := c.opts.IfMatch; p != nil && !p.Any {
				s.versionConflict(ctx, c)
				return true
			}
			return false
		})
		if cached {
			// The cache was behind: another process appended a while ago.
			// Counted as a lost race, not as an attempt (without the cache
			// this one would not have been made), and retried at once.
			s.conflictRetried(live)
			return live, false
		}
		return s.retryLater(ctx, live, attempt), true
	case errors.Is(appendErr, ErrIdempotencyKeyTaken):
		s.cache.drop(id)
		return s.retryLater(ctx, live, attempt), true
	default:
		// Committed or not, nobody can tell: the next command reads the stream.
		s.cache.drop(id)
		return answerAll(live, appendErr), true
	}
}

// appendDecided stores the parts' events and kept answers: through the
// command's own statement for a transfer step, else in one append.
func (s *Service) appendDecided(ctx context.Context, a *domain.Account, expected int, parts []decided) error {
	if len(parts) == 1 {
		p := parts[0]
		opts := p.c.opts
		ap := Append{
			Account: a, ExpectedVersion: expected, EventIDs: opts.eventIDs, Metadata: opts.Metadata,
			Idempotency: scopeOf(opts.Idempotency), Fingerprint: fingerprintOf(opts.Idempotency), Answer: p.answer,
		}
		if opts.appendWith != nil && p.err == nil {
			return opts.appendWith(ctx, ap)
		}
		return s.store.Append(ctx, ap)
	}
	g := GroupAppend{Account: a, ExpectedVersion: expected, Decisions: make([]Decision, len(parts))}
	for i, p := range parts {
		opts := p.c.opts
		g.Decisions[i] = Decision{
			Events: p.events, Metadata: opts.Metadata,
			Idempotency: scopeOf(opts.Idempotency), Fingerprint: fingerprintOf(opts.Idempotency), Answer: p.answer,
		}
	}
	return s.store.AppendGroup(ctx, g)
}

// retryLater counts a lost race for live: once attempts run out they are
// answered ErrConcurrencyConflict, else they wait a little and go again.
func (s *Service) retryLater(ctx context.Context, live []*queuedCommand, attempt int) []*queuedCommand {
	if attempt >= s.maxAttempts {
		return answerAll(live, ErrConcurrencyConflict)
	}
	s.conflictRetried(live)
	if err := backoff(ctx, attempt); err != nil {
		return answerAll(live, err)
	}
	return live
}

func (s *Service) conflictRetried(live []*queuedCommand) {
	for _, c := range live {
		s.obs.ConflictRetried(c.name)
	}
}

// versionConflict answers c, whose If-Match names a version the account is
// not at, unless a duplicate of c moved the version: then c gets its answer.
func (s *Service) versionConflict(ctx context.Context, c *queuedCommand) {
	kept, ok, err := s.replay(ctx, c.name, c.opts.Idempotency)
	switch {
	case err != nil:
		c.err = err
	case ok:
		c.res = kept
	default:
		c.err = ErrVersionConflict
	}
}

// answerAll answers every one of live with err and leaves none to run.
func answerAll(live []*queuedCommand, err error) []*queuedCommand {
	for _, c := range live {
		c.err = err
	}
	return nil
}

// current returns id's account from the cache (cached true) or the stream.
func (s *Service) current(ctx context.Context, id uuid.UUID) (a *domain.Account, cached bool, err error) {
	if a, ok := s.cache.get(id); ok {
		return a, true, nil
	}
	a, err = s.store.Load(ctx, id)
	if err != nil {
		return nil, false, err
	}
	s.cache.put(a)
	return a, false, nil
}

// replay returns the answer kept under idem's key (ok true), if any; an answer
// kept for another request is ErrIdempotencyKeyReused. Without idem there is
// nothing to replay.
func (s *Service) replay(ctx context.Context, name string, idem *Idempotency) (res Result, ok bool, err error) {
	if idem == nil {
		return Result{}, false, nil
	}
	stored, err := s.store.LookupAnswer(ctx, idem.Scope)
	if err != nil {
		return Result{}, false, err
	}
	return s.answerFrom(name, idem, stored)
}

// answerFrom is what the record stored under idem's key says of a command:
// nothing (none is stored), its answer replayed, or ErrIdempotencyKeyReused
// when the record is another request's.
func (s *Service) answerFrom(name string, idem *Idempotency, stored *KeptAnswer) (res Result, ok bool, err error) {
	switch {
	case stored == nil:
		return Result{}, false, nil
	case !bytes.Equal(stored.Fingerprint, idem.Fingerprint):
		return Result{}, false, ErrIdempotencyKeyReused
	}
	s.obs.IdempotentReplay(name)
	return Result{Answer: stored.Answer, Replayed: true}, true, nil
}

// replayAll answers the members of live whose idempotency key already holds
// an answer (or ErrIdempotencyKeyReused) and returns the others, looking up
// every key of the group in one round trip.
func (s *Service) replayAll(ctx context.Context, live []*queuedCommand) ([]*queuedCommand, error) {
	var scopes []IdempotencyScope
	for _, c := range live {
		if c.opts.Idempotency != nil {
			scopes = append(scopes, c.opts.Idempotency.Scope)
		}
	}
	if len(scopes) == 0 {
		return live, nil
	}
	stored, err := s.store.LookupAnswers(ctx, scopes)
	if err != nil {
		return live, err
	}
	i := 0
	return slices.DeleteFunc(live, func(c *queuedCommand) bool {
		if c.opts.Idempotency == nil {
			return false
		}
		res, ok, err := s.answerFrom(c.name, c.opts.Idempotency, stored[i])
		i++
		c.res, c.err = res, err
		return ok || err != nil
	}), nil
}

// backoff waits a little, with jitter, so that racing writers of a hot account
// spread out instead of colliding again in lock step.
func backoff(ctx context.Context, attempt int) error {
	limit := time.Millisecond << min(attempt, 6)
	t := time.NewTimer(rand.N(limit) + time.Millisecond/2)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func scopeOf(i *Idempotency) *IdempotencyScope {
	if i == nil {
		return nil
	}
	return &i.Scope
}

func fingerprintOf(i *Idempotency) []byte {
	if i == nil {
		return nil
	}
	return i.Fingerprint
}

func outcome(err error, res Result) string {
	switch {
	case err == nil && res.Replayed:
		return "replayed"
	case err == nil:
		return "ok"
	case errors.Is(err, domain.ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrConcurrencyConflict):
		return "conflict"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	case isRejection(err):
		return "rejected"
	default:
		return "error"
	}
}

func isRejection(err error) bool {
	for _, e := range []error{
		domain.ErrAccountNotFound, domain.ErrAccountExists, domain.ErrAccountClosed, domain.ErrInsufficientFunds,
		domain.ErrBalanceNotZero, domain.ErrBalanceLimitExceeded, domain.ErrCurrencyMismatch,
		ErrVersionConflict, ErrIdempotencyKeyReused,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
