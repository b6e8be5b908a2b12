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
	EventsAppended(n int)
	// TransferRecovered counts a transfer the recovery loop finished, by
	// how it ended (completed or returned).
	TransferRecovered(status string)
}

type nopObserver struct{}

func (nopObserver) CommandFinished(string, string, time.Duration) {}
func (nopObserver) ConflictRetried(string)                        {}
func (nopObserver) IdempotentReplay(string)                       {}
func (nopObserver) EventsAppended(int)                            {}
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
	locks           *streamLocks
	cache           *aggregates
}

// NewService returns a Service over store.
func NewService(store EventStore, cfg Config) *Service {
	s := &Service{
		store: store, defaultCurrency: cfg.DefaultCurrency, maxAttempts: cfg.MaxAttempts,
		now: cfg.Now, obs: cfg.Observer, locks: newStreamLocks(cfg.LockWait),
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

// execute is the one decide-append loop all commands share. It re-reads the
// stream and decides again when an append loses a race, unless If-Match pins
// the version, in which case a lost race is the client's version conflict.
//
// The account usually comes from the in-memory cache (see aggregates). Only
// what the cache cannot get wrong is trusted from it: a decision that the
// store then accepts. A rejection, a failed If-Match or a lost append on a
// cached state sends the command back to the stream: it is decided again on
// a fresh load, at once and without counting as an attempt (MaxAttempts
// bounds what a client would have seen without the cache).
func (s *Service) execute(ctx context.Context, name string, id uuid.UUID, opts Options, decide func(a *domain.Account) error) (res Result, err error) {
	start := time.Now()
	defer func() { s.obs.CommandFinished(name, outcome(err, res), time.Since(start)) }()

	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	idem := opts.Idempotency
	for attempt := 1; ; attempt++ {
		if kept, ok, err := s.replay(ctx, name, idem); ok || err != nil {
			return kept, err
		}

		a, cached, err := s.current(ctx, id)
		if err != nil {
			return Result{}, err
		}
		if a.Exists() && !opts.Caller.mayCommand(a) {
			// Indistinguishable from an unknown account, so that ids leak
			// nothing; never kept under an idempotency key either.
			return Result{}, domain.ErrAccountNotFound
		}
		// recheck forgets the cached state and runs this attempt again on the stream.
		recheck := func() { s.cache.drop(id); attempt-- }
		if p := opts.IfMatch; p != nil {
			if !a.Exists() {
				return Result{}, domain.ErrAccountNotFound
			}
			if !p.matches(a.Version()) {
				if cached {
					recheck()
					continue
				}
				// A duplicate of this request may have moved the version since
				// the lookup above: then its answer is this one's.
				if kept, ok, err := s.replay(ctx, name, idem); ok || err != nil {
					return kept, err
				}
				return Result{}, ErrVersionConflict
			}
		}
		expected := a.Version()
		decideErr := decide(a)
		if decideErr != nil && cached {
			recheck()
			continue
		}

		var answer Answer
		if idem != nil {
			if ans, keep := idem.Keep(Outcome{Account: a, Err: decideErr}); keep {
				answer = ans
			}
		}
		if decideErr != nil && answer == nil {
			return Result{}, decideErr
		}
		ap := Append{
			Account: a, ExpectedVersion: expected, EventIDs: opts.eventIDs, Metadata: opts.Metadata,
			Idempotency: scopeOf(idem), Fingerprint: fingerprintOf(idem), Answer: answer,
		}
		var appendErr error
		if opts.appendWith != nil && decideErr == nil {
			appendErr = opts.appendWith(ctx, ap)
		} else {
			appendErr = s.store.Append(ctx, ap)
		}
		switch {
		case appendErr == nil:
			a.MarkCommitted()
			s.cache.put(a)
			s.obs.EventsAppended(a.Version() - expected)
			return Result{Account: a, Answer: answer}, decideErr
		case errors.Is(appendErr, ErrVersionTaken) && opts.IfMatch != nil && !opts.IfMatch.Any:
			s.cache.drop(id)
			// The version may have gone to a duplicate of this very request in
			// another process: then its answer is this one's, not a conflict.
			if kept, ok, err := s.replay(ctx, name, idem); ok || err != nil {
				return kept, err
			}
			return Result{}, ErrVersionConflict
		case errors.Is(appendErr, ErrVersionTaken) && cached:
			// The cache was behind: another process appended a while ago.
			// Counted as a lost race, not as an attempt (without the cache
			// this one would not have been made), and retried at once.
			s.obs.ConflictRetried(name)
			recheck()
		case errors.Is(appendErr, ErrVersionTaken), errors.Is(appendErr, ErrIdempotencyKeyTaken):
			s.cache.drop(id)
			if attempt >= s.maxAttempts {
				return Result{}, ErrConcurrencyConflict
			}
			s.obs.ConflictRetried(name)
			if err := backoff(ctx, attempt); err != nil {
				return Result{}, err
			}
		default:
			// Committed or not, nobody can tell: the next command reads the stream.
			s.cache.drop(id)
			return Result{}, appendErr
		}
	}
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
	if err != nil || stored == nil {
		return Result{}, false, err
	}
	if !bytes.Equal(stored.Fingerprint, idem.Fingerprint) {
		return Result{}, false, ErrIdempotencyKeyReused
	}
	s.obs.IdempotentReplay(name)
	return Result{Answer: stored.Answer, Replayed: true}, true, nil
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
