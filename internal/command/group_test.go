package command_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/store"
	"github.com/evbank/bank/internal/testwait"
)

// gatedStore holds the first append made while it is armed until released,
// and counts the commands of each group append.
type gatedStore struct {
	command.EventStore
	armed    atomic.Bool
	entered  chan struct{}
	release  chan struct{}
	mu       sync.Mutex
	groupLen []int
}

func (g *gatedStore) Append(ctx context.Context, ap command.Append) error {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
	}
	return g.EventStore.Append(ctx, ap)
}

func (g *gatedStore) AppendGroup(ctx context.Context, ga command.GroupAppend) error {
	g.mu.Lock()
	g.groupLen = append(g.groupLen, len(ga.Decisions))
	g.mu.Unlock()
	return g.EventStore.AppendGroup(ctx, ga)
}

// newGatedService returns a service over a gated store, and a plain service
// and the store itself beside it, over one real database.
func newGatedService(t *testing.T) (*command.Service, *gatedStore, *command.Service, *store.EventStore) {
	t.Helper()
	base, _, es := newServices(t, command.Config{})
	gate := &gatedStore{EventStore: es, entered: make(chan struct{}), release: make(chan struct{})}
	return command.NewService(gate, command.Config{DefaultCurrency: usd}), gate, base, es
}

// queueInOrder calls start(i) for each i < n, each once the one before it
// waits in id's line, so that they queue in this order behind a leader
// held at the gate.
func queueInOrder(t *testing.T, s *command.Service, id uuid.UUID, n int, start func(i int)) {
	t.Helper()
	for i := range n {
		start(i)
		testwait.Until(t, 5*time.Second, func() (bool, string) {
			q := command.QueuedOn(s, id)
			return q == i+1, fmt.Sprintf("%d commands in line, want %d", q, i+1)
		})
	}
}

// keepAll keeps every outcome under the key: the version reached, or the error.
func keepAll(key string, fingerprint byte) *command.Idempotency {
	return &command.Idempotency{
		Scope:       command.IdempotencyScope{Principal: "o", Method: "POST", Path: "/accounts/x", Key: key},
		Fingerprint: []byte{fingerprint},
		Keep: func(o command.Outcome) (command.Answer, bool) {
			if o.Err != nil {
				return command.Answer("refused: " + o.Err.Error()), true
			}
			return command.Answer(fmt.Sprintf("version %d balance %d", o.Account.Version(), o.Account.Balance())), true
		},
	}
}

// TestQueuedCommandsAreDecidedTogether: commands that queue on one account
// while another is being appended are decided in order on one aggregate and
// appended in one statement; each gets its own answer, its own metadata and
// its own idempotency record, and a command refused after the earlier ones
// of its group is refused alone.
func TestQueuedCommandsAreDecidedTogether(t *testing.T) {
	t.Parallel()
	s, gate, base, es := newGatedService(t)
	ctx := context.Background()
	id := open(t, base, "10.00") // versions 1-2, balance 10.00

	meta := func(c string) command.Metadata { return command.Metadata{Principal: "o", CorrelationID: c} }
	type outcome struct {
		res command.Result
		err error
	}
	run := func(f func() (command.Result, error)) chan outcome {
		out := make(chan outcome, 1)
		go func() {
			res, err := f()
			out <- outcome{res, err}
		}()
		return out
	}
	deposit := func(amount, corr string, opts command.Options) chan outcome {
		opts.Metadata = meta(corr)
		return run(func() (command.Result, error) {
			return s.Deposit(ctx, command.Deposit{AccountID: id, Amount: amount}, opts)
		})
	}
	withdraw := func(amount, corr string, opts command.Options) chan outcome {
		opts.Metadata = meta(corr)
		return run(func() (command.Result, error) {
			return s.Withdraw(ctx, command.Withdraw{AccountID: id, Amount: amount}, opts)
		})
	}

	gate.armed.Store(true)
	leader := deposit("1.00", "leader", command.Options{}) // version 3, 11.00
	<-gate.entered
	queued := []func() chan outcome{
		func() chan outcome { return deposit("2.00", "c0", command.Options{Idempotency: keepAll("k0", 0)}) },   // version 4, 13.00
		func() chan outcome { return withdraw("20.00", "c1", command.Options{Idempotency: keepAll("k1", 1)}) }, // refused alone, kept
		func() chan outcome { return withdraw("5.00", "c2", command.Options{}) },                               // version 5, 8.00
		func() chan outcome { return deposit("2.00", "c3", command.Options{Idempotency: keepAll("k0", 0)}) },   // a duplicate of c0: the next group, replayed
		func() chan outcome {
			return deposit("1.00", "c4", command.Options{Caller: &command.Caller{Principal: "mallory"}})
		},
		func() chan outcome {
			return run(func() (command.Result, error) {
				return s.CloseAccount(ctx, command.CloseAccount{AccountID: id}, command.Options{Metadata: meta("c5")})
			})
		},
	}
	outs := make([]chan outcome, len(queued))
	queueInOrder(t, s, id, len(queued), func(i int) { outs[i] = queued[i]() })
	close(gate.release)

	if o := <-leader; o.err != nil || o.res.Account.Version() != 3 {
		t.Fatalf("leader: %+v", o)
	}
	got := make([]outcome, len(outs))
	for i, out := range outs {
		got[i] = <-out
	}
	if o := got[0]; o.err != nil || string(o.res.Answer) != "version 4 balance 1300" || o.res.Account.Version() != 4 || o.res.Account.Balance() != 1300 {
		t.Errorf("c0: %q %v, %v; want version 4 balance 1300", o.res.Answer, o.res.Account, o.err)
	}
	if o := got[1]; !errors.Is(o.err, domain.ErrInsufficientFunds) || string(o.res.Answer) != "refused: "+domain.ErrInsufficientFunds.Error() {
		t.Errorf("c1: %q, %v; want insufficient funds, kept", o.res.Answer, o.err)
	}
	if o := got[2]; o.err != nil || o.res.Account.Version() != 5 || o.res.Account.Balance() != 800 {
		t.Errorf("c2: %v, %v; want version 5 balance 800", o.res.Account, o.err)
	}
	if o := got[3]; o.err != nil || !o.res.Replayed || string(o.res.Answer) != "version 4 balance 1300" {
		t.Errorf("c3: %+v, %v; want c0's answer replayed", o.res, o.err)
	}
	if o := got[4]; !errors.Is(o.err, domain.ErrAccountNotFound) {
		t.Errorf("c4 (another owner): %v; want account not found", o.err)
	}
	if o := got[5]; !errors.Is(o.err, domain.ErrBalanceNotZero) {
		t.Errorf("c5: %v; want balance not zero", o.err)
	}
	gate.mu.Lock()
	groups := gate.groupLen
	gate.mu.Unlock()
	if len(groups) != 1 || groups[0] != 3 {
		t.Errorf("group appends %v; want one of 3 commands (c0, c1 kept, c2)", groups)
	}

	// The stream holds each accepted command once, in order, with its own
	// metadata, and its positions follow its versions.
	events, err := es.ReadStream(ctx, id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	wantCorr := []string{"", "", "leader", "c0", "c2"}
	if len(events) != len(wantCorr) {
		t.Fatalf("%d events in the stream, want %d", len(events), len(wantCorr))
	}
	for i, e := range events {
		var m command.Metadata
		if err := json.Unmarshal(e.Metadata, &m); err != nil {
			t.Fatal(err)
		}
		if e.Version != i+1 || m.CorrelationID != wantCorr[i] || (i > 0 && e.GlobalPosition <= events[i-1].GlobalPosition) {
			t.Errorf("event %d: version %d position %d correlation %q; want version %d, rising positions, correlation %q",
				i, e.Version, e.GlobalPosition, m.CorrelationID, i+1, wantCorr[i])
		}
	}
	if events[3].TransactionID != events[4].TransactionID {
		t.Errorf("c0 and c2 were appended in transactions %d and %d; want one", events[3].TransactionID, events[4].TransactionID)
	}
	for _, key := range []string{"k0", "k1"} {
		if kept, err := es.LookupAnswer(ctx, keepAll(key, 0).Scope); err != nil || kept == nil {
			t.Errorf("record of %s: %v, %v; want kept", key, kept, err)
		}
	}
}

// TestGroupsRaceAcrossProcesses: two services (two api processes) drive
// deposits and withdrawals on a few hot accounts at once. Whatever groups
// form and whichever appends lose races, each accepted command is in its
// stream exactly once, balances are exact and never negative, and no two
// answers name the same version of an account.
func TestGroupsRaceAcrossProcesses(t *testing.T) {
	t.Parallel()
	obs := &groupCounting{}
	a, b, es := newServices(t, command.Config{Observer: obs, MaxAttempts: 100, LockWait: 30 * time.Second})
	ctx := context.Background()
	ids := []uuid.UUID{open(t, a, "5.00"), open(t, a, "5.00"), open(t, a, "5.00")}
	type done struct {
		account uuid.UUID
		delta   int64
		version int
	}
	var (
		mu   sync.Mutex
		oks  []done
		wg   sync.WaitGroup
		fail atomic.Int64
	)
	for g := range 48 {
		svc := a
		if g%2 == 1 {
			svc = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 15 {
				id := ids[rand.IntN(len(ids))]
				var (
					res   command.Result
					err   error
					delta int64
				)
				if rand.IntN(2) == 0 {
					delta = 100
					res, err = svc.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{})
				} else {
					delta = -150
					res, err = svc.Withdraw(ctx, command.Withdraw{AccountID: id, Amount: "1.50"}, command.Options{})
				}
				switch {
				case err == nil:
					mu.Lock()
					oks = append(oks, done{id, delta, res.Account.Version()})
					mu.Unlock()
				case errors.Is(err, domain.ErrInsufficientFunds):
				default:
					fail.Add(1)
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	want := map[uuid.UUID]int64{}
	events := map[uuid.UUID]int{}
	seen := map[[2]any]bool{}
	for _, id := range ids {
		want[id], events[id] = 500, 2
	}
	for _, d := range oks {
		want[d.account] += d.delta
		events[d.account]++
		k := [2]any{d.account, d.version}
		if seen[k] {
			t.Errorf("two commands answered with version %d of %s", d.version, d.account)
		}
		seen[k] = true
	}
	for _, id := range ids {
		acct, err := es.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if acct.Balance() != want[id] || acct.Version() != events[id] {
			t.Errorf("%s: balance %d version %d; want %d and %d from the answers", id, acct.Balance(), acct.Version(), want[id], events[id])
		}
	}
	t.Logf("%d accepted; largest group %d commands", len(oks), obs.largest.Load())
}

type groupCounting struct {
	counting
	largest atomic.Int64
}

func (g *groupCounting) Appended(commands, _ int) {
	for {
		cur := g.largest.Load()
		if int64(commands) <= cur || g.largest.CompareAndSwap(cur, int64(commands)) {
			return
		}
	}
}

// TestIfMatchWithinAGroup: each member's If-Match is checked against the
// account as the members before it left it, and one that no longer matches
// is that member's version conflict alone.
func TestIfMatchWithinAGroup(t *testing.T) {
	t.Parallel()
	s, gate, base, es := newGatedService(t)
	ctx := context.Background()
	id := open(t, base, "") // version 1

	deposit := func(p *command.Precondition) chan error {
		out := make(chan error, 1)
		go func() {
			_, err := s.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{IfMatch: p})
			out <- err
		}()
		return out
	}
	gate.armed.Store(true)
	leader := deposit(nil) // version 2
	<-gate.entered
	preconditions := []*command.Precondition{
		{Versions: []int{2}}, // matches after the leader: version 3
		{Versions: []int{2}}, // the member before it moved the account on
		{Any: true},          // version 4
		{Versions: []int{4}}, // version 5
	}
	outs := make([]chan error, len(preconditions))
	queueInOrder(t, s, id, len(preconditions), func(i int) { outs[i] = deposit(preconditions[i]) })
	close(gate.release)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, command.ErrVersionConflict, nil, nil} {
		if err := <-outs[i]; !errors.Is(err, want) {
			t.Errorf("member %d: %v, want %v", i, err, want)
		}
	}
	if acct, err := es.Load(ctx, id); err != nil || acct.Version() != 5 || acct.Balance() != 400 {
		t.Errorf("account %v, %v; want version 5, balance 400", acct, err)
	}
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if len(gate.groupLen) != 1 || gate.groupLen[0] != 3 {
		t.Errorf("group appends %v; want one of the 3 members that matched", gate.groupLen)
	}
}
