package command_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var usd = domain.MustCurrency("USD")

// counting records what the service reports, to check retries happen.
type counting struct {
	retries, replays atomic.Int64
	mu               sync.Mutex
	outcomes         map[string]int
}

func (c *counting) CommandFinished(_, outcome string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outcomes == nil {
		c.outcomes = map[string]int{}
	}
	c.outcomes[outcome]++
}
func (c *counting) ConflictRetried(string)   { c.retries.Add(1) }
func (c *counting) IdempotentReplay(string)  { c.replays.Add(1) }
func (c *counting) Appended(int, int)        {}
func (c *counting) TransferRecovered(string) {}

// newServices returns two services over one real database: like two api
// processes, they do not share the in-process stream queue, so their appends race.
func newServices(t *testing.T, cfg command.Config) (*command.Service, *command.Service, *store.EventStore) {
	t.Helper()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	es := store.NewEventStore(pool, store.Options{DefaultCurrency: usd})
	cfg.DefaultCurrency = usd
	return command.NewService(es, cfg), command.NewService(es, cfg), es
}

func open(t *testing.T, s *command.Service, initial string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if _, err := s.OpenAccount(context.Background(), command.OpenAccount{ID: id, OwnerID: "o", InitialDeposit: initial}, command.Options{}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRacingProcessesRetryUntilEveryDepositLands(t *testing.T) {
	t.Parallel()
	obs := &counting{}
	a, b, es := newServices(t, command.Config{Observer: obs, MaxAttempts: 50})
	id := open(t, a, "")
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 40 {
		svc := a
		if i%2 == 1 {
			svc = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	acct, err := es.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Balance() != 4000 || acct.Version() != 41 {
		t.Fatalf("balance %d version %d; want 4000 and 41", acct.Balance(), acct.Version())
	}
	if obs.retries.Load() == 0 {
		t.Log("no append lost a race this run; the retry path was not exercised")
	}
}

func TestIfMatchPinsTheVersion(t *testing.T) {
	t.Parallel()
	s, _, _ := newServices(t, command.Config{})
	ctx := context.Background()
	id := open(t, s, "10.00") // version 2
	_, err := s.Withdraw(ctx, command.Withdraw{AccountID: id, Amount: "1.00"}, command.Options{IfMatch: &command.Precondition{Versions: []int{1}}})
	if !errors.Is(err, command.ErrVersionConflict) {
		t.Fatalf("If-Match 1 on version 2 = %v; want ErrVersionConflict", err)
	}
	res, err := s.Withdraw(ctx, command.Withdraw{AccountID: id, Amount: "1.00"}, command.Options{IfMatch: &command.Precondition{Versions: []int{2}}})
	if err != nil || res.Account.Version() != 3 {
		t.Fatalf("If-Match 2 = %v; want version 3", err)
	}
	if _, err := s.Deposit(ctx, command.Deposit{AccountID: uuid.New(), Amount: "1.00"}, command.Options{IfMatch: &command.Precondition{Any: true}}); !errors.Is(err, domain.ErrAccountNotFound) {
		t.Fatalf("If-Match * on a missing account = %v; want ErrAccountNotFound", err)
	}
}

// loadBarrier is the real store with one hook: the first n loads wait for each
// other, so that n commands certainly read the same version before any of them
// appends. Everything else, the race included, happens in PostgreSQL.
type loadBarrier struct {
	*store.EventStore
	mu      sync.Mutex
	waiting int
	n       int
	all     chan struct{} // closed when the n-th load arrives
}

func newLoadBarrier(es *store.EventStore, n int) *loadBarrier {
	return &loadBarrier{EventStore: es, n: n, all: make(chan struct{})}
}

func (b *loadBarrier) Load(ctx context.Context, id uuid.UUID) (*domain.Account, error) {
	a, err := b.EventStore.Load(ctx, id)
	b.mu.Lock()
	b.waiting++
	if b.waiting == b.n {
		close(b.all)
	}
	first := b.waiting <= b.n
	b.mu.Unlock()
	if first {
		<-b.all
	}
	return a, err
}

func TestExhaustedRetriesAreAConcurrencyConflict(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	es := store.NewEventStore(pool, store.Options{DefaultCurrency: usd})
	barrier := newLoadBarrier(es, 2)
	// Two services are two api processes: they do not share the stream queue.
	cfg := command.Config{DefaultCurrency: usd, MaxAttempts: 1, CacheSize: -1}
	a, b := command.NewService(barrier, cfg), command.NewService(barrier, cfg)
	id := uuid.New()
	if err := func() error {
		acct, err := domain.Open(id, "o", usd, 0, time.Now())
		if err != nil {
			return err
		}
		return es.Append(context.Background(), command.Append{Account: acct})
	}(); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, svc := range []*command.Service{a, b} {
		go func() {
			_, err := svc.Deposit(context.Background(), command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{})
			errs <- err
		}()
	}
	var ok, conflicts int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, command.ErrConcurrencyConflict):
			conflicts++
		default:
			t.Fatal(err)
		}
	}
	if ok != 1 || conflicts != 1 {
		t.Fatalf("two single-attempt deposits on the same version: %d ok, %d conflicts; want 1 and 1", ok, conflicts)
	}
	if _, v, _ := es.StreamHead(context.Background(), id); v != 2 {
		t.Fatalf("version %d; want 2 (one deposit appended)", v)
	}
}

func TestIdempotentReplayAndReuse(t *testing.T) {
	t.Parallel()
	obs := &counting{}
	s, _, es := newServices(t, command.Config{Observer: obs})
	ctx := context.Background()
	id := open(t, s, "")
	idem := func(fp byte) *command.Idempotency {
		return &command.Idempotency{
			Scope:       command.IdempotencyScope{Method: "POST", Path: "/accounts/x/deposit", Key: "k"},
			Fingerprint: []byte{fp},
			Keep: func(o command.Outcome) (command.Answer, bool) {
				if o.Err != nil {
					return nil, false
				}
				return command.Answer(domain.FormatAmount(o.Account.Balance(), usd)), true
			},
		}
	}
	first, err := s.Deposit(ctx, command.Deposit{AccountID: id, Amount: "5.00"}, command.Options{Idempotency: idem(1)})
	if err != nil || string(first.Answer) != "5.00" {
		t.Fatalf("first = %+v, %v", first, err)
	}
	again, err := s.Deposit(ctx, command.Deposit{AccountID: id, Amount: "5.00"}, command.Options{Idempotency: idem(1)})
	if err != nil || !again.Replayed || string(again.Answer) != "5.00" {
		t.Fatalf("retry = %+v, %v; want the first response replayed", again, err)
	}
	if _, err := s.Deposit(ctx, command.Deposit{AccountID: id, Amount: "6.00"}, command.Options{Idempotency: idem(2)}); !errors.Is(err, command.ErrIdempotencyKeyReused) {
		t.Fatalf("other request under the key = %v; want ErrIdempotencyKeyReused", err)
	}
	if a, _ := es.Load(ctx, id); a.Balance() != 500 {
		t.Fatalf("balance %d after a replay; want 500 (appended once)", a.Balance())
	}
	if obs.replays.Load() != 1 {
		t.Fatalf("replays counted %d; want 1", obs.replays.Load())
	}
}

func TestValidationHappensBeforeAnythingIsStored(t *testing.T) {
	t.Parallel()
	s, _, es := newServices(t, command.Config{})
	ctx := context.Background()
	id := open(t, s, "")
	for _, amount := range []string{"0", "1.001", "-1", "abc", ""} {
		_, err := s.Deposit(ctx, command.Deposit{AccountID: id, Amount: amount}, command.Options{})
		var verr *domain.ValidationError
		if !errors.As(err, &verr) || verr.Fields[0].Field != "amount" {
			t.Errorf("amount %q = %v; want a validation error on amount", amount, err)
		}
	}
	if _, v, _ := es.StreamHead(ctx, id); v != 1 {
		t.Fatalf("version %d after rejected deposits; want 1", v)
	}
	if _, err := s.OpenAccount(ctx, command.OpenAccount{ID: id, OwnerID: "o"}, command.Options{}); !errors.Is(err, domain.ErrAccountExists) {
		t.Fatalf("opening a used id = %v; want ErrAccountExists", err)
	}
}
