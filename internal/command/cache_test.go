package command_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

// countingStore counts loads, and fails the appends it is told to.
type countingStore struct {
	command.EventStore
	loads    atomic.Int64
	failNext atomic.Bool
}

func (c *countingStore) Load(ctx context.Context, id uuid.UUID) (*domain.Account, error) {
	c.loads.Add(1)
	return c.EventStore.Load(ctx, id)
}

func (c *countingStore) Append(ctx context.Context, a command.Append) error {
	if c.failNext.CompareAndSwap(true, false) {
		return errors.New("connection reset (did the INSERT commit? nobody knows)")
	}
	return c.EventStore.Append(ctx, a)
}

func newCountingService(t *testing.T, cfg command.Config) (*command.Service, *countingStore, *store.EventStore) {
	t.Helper()
	es := store.NewEventStore(pgtest.NewPool(t, pgtest.NewDatabase(t)), store.Options{DefaultCurrency: usd})
	cs := &countingStore{EventStore: es}
	cfg.DefaultCurrency = usd
	return command.NewService(cs, cfg), cs, es
}

func TestCachedAccountsSkipTheLoad(t *testing.T) {
	t.Parallel()
	s, cs, es := newCountingService(t, command.Config{CacheSize: command.DefaultCacheSize})
	ctx := context.Background()
	id := open(t, s, "1.00")
	loads := cs.loads.Load()
	for range 5 {
		if _, err := s.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Withdraw(ctx, command.Withdraw{AccountID: id, Amount: "2.00"}, command.Options{IfMatch: &command.Precondition{Versions: []int{7}}})
	if err != nil || res.Account.Balance() != 400 || res.Account.Version() != 8 {
		t.Fatalf("withdraw = %+v, %v; want balance 400 at version 8", res.Account, err)
	}
	if n := cs.loads.Load() - loads; n != 0 {
		t.Errorf("%d loads for 6 commands on a cached account; want none", n)
	}
	if a, _ := es.Load(ctx, id); a.Balance() != 400 || a.Version() != 8 {
		t.Fatalf("stored: balance %d version %d", a.Balance(), a.Version())
	}

	// An append whose fate is unknown makes the next command read the stream.
	cs.failNext.Store(true)
	if _, err := s.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{}); err == nil {
		t.Fatal("the failing append did not fail the command")
	}
	loads = cs.loads.Load()
	if _, err := s.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := cs.loads.Load() - loads; n != 1 {
		t.Errorf("%d loads after an append of unknown fate; want 1", n)
	}
}

// TestStaleCacheIsNeverTrusted: another process (service b) changes the
// account behind a's cache; whatever a's stale state says, a's answers are
// those of the stored stream, with a single attempt allowed.
func TestStaleCacheIsNeverTrusted(t *testing.T) {
	t.Parallel()
	obs := &counting{}
	a, b, es := newServices(t, command.Config{MaxAttempts: 1, Observer: obs, CacheSize: command.DefaultCacheSize})
	ctx := context.Background()
	id := open(t, a, "") // a caches version 1, balance 0

	mustDeposit := func(s *command.Service, amount string) {
		t.Helper()
		if _, err := s.Deposit(ctx, command.Deposit{AccountID: id, Amount: amount}, command.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	// A rejection from the stale state (balance 0) is checked on the stream.
	mustDeposit(b, "10.00")
	res, err := a.Withdraw(ctx, command.Withdraw{AccountID: id, Amount: "4.00"}, command.Options{})
	if err != nil || res.Account.Balance() != 600 || res.Account.Version() != 3 {
		t.Fatalf("withdraw behind a stale cache = %+v, %v; want balance 600 at version 3", res.Account, err)
	}

	// An append lost on the stale state is decided again on the stream.
	mustDeposit(b, "1.00") // version 4
	res, err = a.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{})
	if err != nil || res.Account.Balance() != 800 || res.Account.Version() != 5 {
		t.Fatalf("deposit behind a stale cache = %+v, %v; want balance 800 at version 5", res.Account, err)
	}
	// b's cache was behind a's withdrawal too: two stale appends, one each.
	if obs.retries.Load() != 2 {
		t.Errorf("conflict retries counted: %d; want 2 (the stale appends)", obs.retries.Load())
	}

	// If-Match is checked against the stream, not the stale state.
	mustDeposit(b, "1.00") // version 6
	if _, err := a.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{IfMatch: &command.Precondition{Versions: []int{6}}}); err != nil {
		t.Fatalf("If-Match 6 on version 6, a's cache at 5: %v", err)
	}
	mustDeposit(b, "1.00") // version 8
	if _, err := a.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{IfMatch: &command.Precondition{Versions: []int{7}}}); !errors.Is(err, command.ErrVersionConflict) {
		t.Fatalf("If-Match 7 on version 8, a's cache at 7: %v; want ErrVersionConflict", err)
	}

	// A close by the other process is seen.
	if _, err := b.Withdraw(ctx, command.Withdraw{AccountID: id, Amount: "11.00"}, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CloseAccount(ctx, command.CloseAccount{AccountID: id}, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{}); !errors.Is(err, domain.ErrAccountClosed) {
		t.Fatalf("deposit on an account closed behind a's cache: %v; want ErrAccountClosed", err)
	}
	if acct, _ := es.Load(ctx, id); acct.Balance() != 0 || acct.Version() != 10 || acct.Status() != domain.StatusClosed {
		t.Fatalf("stored: balance %d version %d %s", acct.Balance(), acct.Version(), acct.Status())
	}
}

func TestCacheOff(t *testing.T) {
	t.Parallel()
	s, cs, _ := newCountingService(t, command.Config{CacheSize: -1})
	id := open(t, s, "")
	loads := cs.loads.Load()
	if _, err := s.Deposit(context.Background(), command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := cs.loads.Load() - loads; n != 1 {
		t.Errorf("%d loads without a cache; want 1", n)
	}
}
