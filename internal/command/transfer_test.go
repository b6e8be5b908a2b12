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
	"github.com/evbank/bank/internal/store"
)

func balance(t *testing.T, es *store.EventStore, id uuid.UUID) int64 {
	t.Helper()
	a, err := es.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance()
}

func transfer(s *command.Service, from, to uuid.UUID, amount string) (command.TransferResult, error) {
	return s.Transfer(context.Background(), command.Transfer{From: from, To: to, Amount: amount}, command.Options{})
}

func TestTransferCompletes(t *testing.T) {
	t.Parallel()
	s, _, es := newServices(t, command.Config{})
	from, to := open(t, s, "100.00"), open(t, s, "")
	res, err := transfer(s, from, to, "25.50")
	if err != nil || res.Transfer.Status != command.TransferCompleted || res.Transfer.FinishedAt.IsZero() {
		t.Fatalf("transfer = %+v, %v; want completed", res.Transfer, err)
	}
	stored, err := es.Transfer(context.Background(), res.Transfer.ID)
	if err != nil || !stored.CreatedAt.Equal(res.Transfer.CreatedAt) || !stored.FinishedAt.Equal(res.Transfer.FinishedAt) ||
		stored.CreatedAt.IsZero() || stored.FinishedAt.Before(stored.CreatedAt) {
		t.Errorf("answered %v..%v, stored %v..%v (%v): want the stored times", res.Transfer.CreatedAt, res.Transfer.FinishedAt, stored.CreatedAt, stored.FinishedAt, err)
	}
	if b := balance(t, es, from); b != 7450 {
		t.Errorf("source balance %d, want 7450", b)
	}
	if b := balance(t, es, to); b != 2550 {
		t.Errorf("destination balance %d, want 2550", b)
	}
}

// TestTransferChecksInOrder: each refusal of DESIGN §7, in its order, with
// nothing appended.
func TestTransferChecksInOrder(t *testing.T) {
	t.Parallel()
	s, _, es := newServices(t, command.Config{})
	ctx := context.Background()
	rich, poor, dest := open(t, s, "100.00"), open(t, s, "1.00"), open(t, s, "")
	closedDest := open(t, s, "")
	if _, err := s.CloseAccount(ctx, command.CloseAccount{AccountID: closedDest}, command.Options{}); err != nil {
		t.Fatal(err)
	}
	closedSrc := open(t, s, "")
	if _, err := s.CloseAccount(ctx, command.CloseAccount{AccountID: closedSrc}, command.Options{}); err != nil {
		t.Fatal(err)
	}
	jpyID := uuid.New()
	if _, err := s.OpenAccount(ctx, command.OpenAccount{ID: jpyID, OwnerID: "o", Currency: "JPY"}, command.Options{}); err != nil {
		t.Fatal(err)
	}
	theirs := &command.Caller{Principal: "mallory"}
	tests := []struct {
		name     string
		from, to uuid.UUID
		amount   string
		caller   *command.Caller
		want     error
	}{
		{"source not the caller's, bad amount too", rich, dest, "x", theirs, domain.ErrAccountNotFound},
		{"unknown source", uuid.New(), dest, "1.00", nil, domain.ErrAccountNotFound},
		{"closed source, bad amount too", closedSrc, dest, "x", nil, domain.ErrAccountClosed},
		{"bad amount, unknown destination too", rich, uuid.New(), "1.001", nil, domain.ErrInvalid},
		{"zero amount", rich, dest, "0", nil, domain.ErrInvalid},
		{"unknown destination, no funds too", poor, uuid.New(), "5.00", nil, domain.ErrDestinationNotFound},
		{"closed destination", rich, closedDest, "1.00", nil, domain.ErrDestinationClosed},
		{"to itself", rich, rich, "1.00", nil, domain.ErrInvalid},
		{"other currency", rich, jpyID, "1.00", nil, domain.ErrCurrencyMismatch},
		{"no funds", poor, dest, "5.00", nil, domain.ErrInsufficientFunds},
	}
	for _, tt := range tests {
		before := balance(t, es, tt.from)
		_, err := s.Transfer(ctx, command.Transfer{From: tt.from, To: tt.to, Amount: tt.amount}, command.Options{Caller: tt.caller})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if !errors.Is(tt.want, domain.ErrAccountNotFound) {
			if after := balance(t, es, tt.from); after != before {
				t.Errorf("%s: source balance moved from %d to %d", tt.name, before, after)
			}
		}
	}
	if pending, _, err := es.TransferBacklog(ctx); err != nil || pending != 0 {
		t.Errorf("pending sagas %d (%v) after refusals only", pending, err)
	}
}

// TestConcurrentTransfersNeverOverdraw: 50 transfers of 10.00 at once from
// 100.00, through two services (two processes): exactly ten succeed.
func TestConcurrentTransfersNeverOverdraw(t *testing.T) {
	t.Parallel()
	// The default bounds on waiting (LockWait) and retrying are for
	// production; 50 at once on one account under -race on a busy machine
	// may queue longer, and every one must get its real answer here.
	a, b, es := newServices(t, command.Config{MaxAttempts: 100, LockWait: 2 * time.Minute})
	from, to := open(t, a, "100.00"), open(t, a, "")
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		svc := a
		if i%2 == 1 {
			svc = b
		}
		wg.Go(func() {
			res, err := transfer(svc, from, to, "10.00")
			switch {
			case err == nil && res.Transfer.Status == command.TransferCompleted:
				ok.Add(1)
			case errors.Is(err, domain.ErrInsufficientFunds):
				refused.Add(1)
			default:
				t.Errorf("transfer: %+v, %v", res.Transfer, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 10 || refused.Load() != 40 {
		t.Fatalf("%d completed, %d refused; want 10 and 40", ok.Load(), refused.Load())
	}
	if balance(t, es, from) != 0 || balance(t, es, to) != 10000 {
		t.Errorf("balances %d and %d, want 0 and 10000", balance(t, es, from), balance(t, es, to))
	}
	if _, v, _ := es.StreamHead(context.Background(), from); v != 12 {
		t.Errorf("source at version %d, want 12 (open, deposit, ten transfers out)", v)
	}
}

// TestCrossingTransfersComplete: 100 transfers each way between two accounts
// at once all complete: no step holds two accounts' locks.
func TestCrossingTransfersComplete(t *testing.T) {
	t.Parallel()
	s, other, es := newServices(t, command.Config{MaxAttempts: 200, LockWait: 2 * time.Minute})
	x, y := open(t, s, "1000.00"), open(t, s, "1000.00")
	var wg sync.WaitGroup
	for i := range 200 {
		from, to, svc := x, y, s
		if i%2 == 1 {
			from, to, svc = y, x, other
		}
		wg.Go(func() {
			if res, err := transfer(svc, from, to, "1.00"); err != nil || res.Transfer.Status != command.TransferCompleted {
				t.Errorf("transfer: %+v, %v", res.Transfer, err)
			}
		})
	}
	wg.Wait()
	if balance(t, es, x) != 100000 || balance(t, es, y) != 100000 {
		t.Errorf("balances %d and %d, want both back at 100000", balance(t, es, x), balance(t, es, y))
	}
}

// closingStore closes the destination right after step 1 commits: the
// destination closes between the check and step 2.
type closingStore struct {
	*store.EventStore
	close func(id uuid.UUID)
}

func (c closingStore) BeginTransfer(ctx context.Context, ap command.Append, saga command.TransferSaga) (time.Time, error) {
	at, err := c.EventStore.BeginTransfer(ctx, ap, saga)
	if err == nil {
		c.close(saga.To)
	}
	return at, err
}

func TestTransferToAnAccountClosedMeanwhileIsReturned(t *testing.T) {
	t.Parallel()
	base, _, es := newServices(t, command.Config{})
	from, to := open(t, base, "50.00"), open(t, base, "")
	closer := command.NewService(es, command.Config{DefaultCurrency: usd})
	s := command.NewService(closingStore{es, func(id uuid.UUID) {
		if _, err := closer.CloseAccount(context.Background(), command.CloseAccount{AccountID: id}, command.Options{}); err != nil {
			t.Error(err)
		}
	}}, command.Config{DefaultCurrency: usd})
	res, err := transfer(s, from, to, "20.00")
	if err != nil || res.Transfer.Status != command.TransferReturned || res.Transfer.Reason != "destination_closed" {
		t.Fatalf("transfer = %+v, %v; want returned for destination_closed", res.Transfer, err)
	}
	if balance(t, es, from) != 5000 || balance(t, es, to) != 0 {
		t.Errorf("balances %d and %d, want 5000 back at the source and nothing at the destination", balance(t, es, from), balance(t, es, to))
	}
	trail, err := es.ReadStream(context.Background(), to, 0, 10)
	if err != nil || len(trail) != 2 {
		t.Errorf("destination trail %d events (%v), want opened and closed only", len(trail), err)
	}
}

// dyingStore fails every step after the first, like a process that dies
// between steps.
type dyingStore struct{ *store.EventStore }

func (dyingStore) FinishTransfer(context.Context, command.Append, uuid.UUID, command.TransferStatus, string) (time.Time, bool, error) {
	return time.Time{}, false, errors.New("the process died")
}

func TestRecoveryFinishesWhatADeadProcessLeftPending(t *testing.T) {
	t.Parallel()
	s, _, es := newServices(t, command.Config{})
	from, to := open(t, s, "50.00"), open(t, s, "")
	dying := command.NewService(dyingStore{es}, command.Config{DefaultCurrency: usd})
	res, err := transfer(dying, from, to, "20.00")
	if err != nil || res.Transfer.Status != command.TransferPending {
		t.Fatalf("transfer with a dying step 2 = %+v, %v; want pending", res.Transfer, err)
	}
	ctx := context.Background()
	if n, err := s.RecoverTransfers(ctx, time.Hour, 10); err != nil || n != 0 {
		t.Fatalf("recovery of young transfers finished %d (%v); want none yet", n, err)
	}
	// Two recoveries at once, as two api processes might: one step each time.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := s.RecoverTransfers(ctx, 0, 10); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := es.Transfer(ctx, res.Transfer.ID)
	if err != nil || got.Status != command.TransferCompleted {
		t.Fatalf("after recovery: %+v, %v; want completed", got, err)
	}
	if balance(t, es, from) != 3000 || balance(t, es, to) != 2000 {
		t.Errorf("balances %d and %d, want 3000 and 2000", balance(t, es, from), balance(t, es, to))
	}
	trail, _ := es.ReadStream(ctx, to, 0, 10)
	if len(trail) != 2 {
		t.Errorf("destination has %d events, want opened and one TransferReceived", len(trail))
	}
}

func TestTransferRetriesAndReusedIDs(t *testing.T) {
	t.Parallel()
	s, _, es := newServices(t, command.Config{})
	ctx := context.Background()
	from, to := open(t, s, "50.00"), open(t, s, "")
	idem := func(fp byte) *command.Idempotency {
		return &command.Idempotency{
			Scope:       command.IdempotencyScope{Principal: "o", Method: "POST", Path: "/transfers", Key: "k"},
			Fingerprint: []byte{fp},
			Keep: func(o command.Outcome) (command.Answer, bool) {
				if o.Transfer == nil {
					return nil, false
				}
				return command.Answer(o.Transfer.ID.String() + " " + string(o.Transfer.Status)), true
			},
		}
	}
	meta := command.Metadata{Principal: "o"}
	first, err := s.Transfer(ctx, command.Transfer{From: from, To: to, Amount: "5.00"}, command.Options{Metadata: meta, Idempotency: idem(1)})
	if err != nil || first.Answer == nil {
		t.Fatalf("first = %+v, %v", first, err)
	}
	// A retry after the answer was lost, in another process whose first
	// attempt died before keeping it: the same transfer, not a second one.
	again, err := s.Transfer(ctx, command.Transfer{From: from, To: to, Amount: "5.00"}, command.Options{Metadata: meta, Idempotency: idem(1)})
	if err != nil || !again.Replayed || string(again.Answer) != string(first.Answer) {
		t.Fatalf("retry = %+v, %v; want the first answer", again, err)
	}
	if _, err := s.Transfer(ctx, command.Transfer{From: from, To: to, Amount: "6.00"}, command.Options{Metadata: meta, Idempotency: idem(2)}); !errors.Is(err, command.ErrIdempotencyKeyReused) {
		t.Errorf("same key, other body = %v; want ErrIdempotencyKeyReused", err)
	}
	// A client-chosen id used again, whatever the body, is transfer_exists.
	id := uuid.New()
	if _, err := s.Transfer(ctx, command.Transfer{ID: id, From: from, To: to, Amount: "1.00"}, command.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transfer(ctx, command.Transfer{ID: id, From: from, To: to, Amount: "1.00"}, command.Options{}); !errors.Is(err, command.ErrTransferExists) {
		t.Errorf("reused id = %v; want ErrTransferExists", err)
	}
	if b := balance(t, es, from); b != 4400 {
		t.Errorf("source balance %d, want 4400 (two transfers)", b)
	}
}

// forgetfulStore dies after the saga ran, before the answer is kept.
type forgetfulStore struct{ *store.EventStore }

func (f forgetfulStore) Append(ctx context.Context, ap command.Append) error {
	if ap.Answer != nil && len(ap.Account.Uncommitted()) == 0 {
		return errors.New("the process died")
	}
	return f.EventStore.Append(ctx, ap)
}

func TestTransferRetryAfterTheAnswerWasLostRunsOnce(t *testing.T) {
	t.Parallel()
	s, _, es := newServices(t, command.Config{})
	ctx := context.Background()
	from, to := open(t, s, "50.00"), open(t, s, "")
	idem := &command.Idempotency{
		Scope:       command.IdempotencyScope{Principal: "o", Method: "POST", Path: "/transfers", Key: "lost"},
		Fingerprint: []byte{7},
		Keep: func(o command.Outcome) (command.Answer, bool) {
			if o.Transfer == nil {
				return nil, false
			}
			return command.Answer(o.Transfer.ID.String()), true
		},
	}
	opts := command.Options{Metadata: command.Metadata{Principal: "o"}, Idempotency: idem}
	dying := command.NewService(forgetfulStore{es}, command.Config{DefaultCurrency: usd})
	if _, err := dying.Transfer(ctx, command.Transfer{From: from, To: to, Amount: "5.00"}, opts); err == nil {
		t.Fatal("the first attempt kept its answer; want it lost")
	}
	res, err := s.Transfer(ctx, command.Transfer{From: from, To: to, Amount: "5.00"}, opts)
	if err != nil || res.Transfer.Status != command.TransferCompleted {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if b := balance(t, es, from); b != 4500 {
		t.Errorf("source balance %d, want 4500: the retry ran the transfer again", b)
	}
}
