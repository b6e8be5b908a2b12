package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

var usd = domain.MustCurrency("USD")

func newStore(t *testing.T, snapshotEvery int) *store.EventStore {
	t.Helper()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	return store.NewEventStore(pool, store.Options{DefaultCurrency: usd, SnapshotEvery: snapshotEvery})
}

func TestAppendAndLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	id := uuid.New()
	now := time.Now()

	a, err := s.Load(ctx, id)
	if err != nil || a.Exists() {
		t.Fatalf("Load of a new stream = %v, %v; want empty aggregate", a, err)
	}
	if err := a.Open("alice", usd, 1000, now); err != nil {
		t.Fatal(err)
	}
	meta := command.Metadata{CorrelationID: "c1", CausationID: "r1", IdempotencyKey: "k1"}
	if err := s.Append(ctx, command.Append{Account: a, ExpectedVersion: 0, Metadata: meta}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	got, err := s.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version() != 2 || got.Balance() != 1000 || got.OwnerID() != "alice" {
		t.Fatalf("loaded version %d balance %d owner %q; want 2, 1000, alice", got.Version(), got.Balance(), got.OwnerID())
	}
	events, err := s.ReadStream(ctx, id, 0, 10)
	if err != nil || len(events) != 2 {
		t.Fatalf("ReadStream = %d events, %v", len(events), err)
	}
	if string(events[0].Metadata) == "{}" {
		t.Fatalf("metadata not recorded: %s", events[0].Metadata)
	}

	// A second writer that loaded the same version loses with a typed error.
	stale := domain.NewAccount(id)
	for _, e := range a.Uncommitted() {
		stale.Apply(e, now)
	}
	stale.MarkCommitted()
	if err := stale.Deposit(5, usd, "", now); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, command.Append{Account: stale, ExpectedVersion: 1}); !errors.Is(err, command.ErrVersionTaken) {
		t.Fatalf("stale append = %v; want ErrVersionTaken", err)
	}
}

func TestEventsAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool := pgtest.NewPool(t, url)
	s := store.NewEventStore(pool, store.Options{})
	a, _ := domain.Open(uuid.New(), "bob", usd, 500, time.Now())
	if err := s.Append(ctx, command.Append{Account: a}); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE events SET data = '{}'`,
		`DELETE FROM events`,
		`TRUNCATE events`,
	} {
		if _, err := pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s succeeded; want the append-only trigger to refuse it", sql)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("events after refused changes = %d, %v; want 2", n, err)
	}
}

func TestIdempotencyRecordAtomicWithEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	scope := command.IdempotencyScope{Method: "POST", Path: "/accounts", Key: "k"}
	a, _ := domain.Open(uuid.New(), "carol", usd, 0, time.Now())
	answer := command.Answer("\x00opaque \xff bytes")
	if err := s.Append(ctx, command.Append{Account: a, Idempotency: &scope, Fingerprint: []byte{1}, Answer: answer}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LookupAnswer(ctx, scope)
	if err != nil || got == nil || string(got.Answer) != string(answer) || string(got.Fingerprint) != "\x01" {
		t.Fatalf("LookupAnswer = %+v, %v; want the answer byte for byte", got, err)
	}
	// A second decision under the same key stores nothing, events included.
	b, _ := domain.Open(uuid.New(), "carol", usd, 0, time.Now())
	err = s.Append(ctx, command.Append{Account: b, Idempotency: &scope, Fingerprint: []byte{1}, Answer: answer})
	if !errors.Is(err, command.ErrIdempotencyKeyTaken) {
		t.Fatalf("second append under key = %v; want ErrIdempotencyKeyTaken", err)
	}
	if _, v, err := s.StreamHead(ctx, b.ID()); !errors.Is(err, domain.ErrAccountNotFound) {
		t.Fatalf("events of the refused append were stored (version %d, %v)", v, err)
	}
}

func TestSnapshotsShortenLoadsAndBadOnesAreIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool := pgtest.NewPool(t, url)
	s := store.NewEventStore(pool, store.Options{DefaultCurrency: usd, SnapshotEvery: 10})
	id := uuid.New()
	a, _ := domain.Open(id, "dora", usd, 0, time.Now())
	if err := s.Append(ctx, command.Append{Account: a}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 25; i++ {
		cur, err := s.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		v := cur.Version()
		if err := cur.Deposit(100, usd, "", time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, command.Append{Account: cur, ExpectedVersion: v}); err != nil {
			t.Fatal(err)
		}
	}
	var snaps int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM snapshots WHERE stream_id = $1`, id).Scan(&snaps); err != nil || snaps != 2 {
		t.Fatalf("snapshots = %d, %v; want 2 (versions 10 and 20)", snaps, err)
	}
	got, err := s.Load(ctx, id)
	if err != nil || got.Balance() != 2500 || got.Version() != 26 {
		t.Fatalf("Load with snapshot = balance %d version %d, %v", got.Balance(), got.Version(), err)
	}
	// A corrupt snapshot, or one of another state version, must not change the answer.
	if _, err := pool.Exec(ctx, `UPDATE snapshots SET state = '{"garbage": true}' WHERE version = 20`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE snapshots SET state_version = 99 WHERE version = 10`); err != nil {
		t.Fatal(err)
	}
	got, err = s.Load(ctx, id)
	if err != nil || got.Balance() != 2500 || got.Version() != 26 {
		t.Fatalf("Load with bad snapshots = balance %d version %d, %v", got.Balance(), got.Version(), err)
	}
}

func TestConcurrentAppendsNeverShareAVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	id := uuid.New()
	a, _ := domain.Open(id, "erin", usd, 0, time.Now())
	if err := s.Append(ctx, command.Append{Account: a}); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		wins    int
		losses  int
		workers = 20
	)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cur, err := s.Load(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			v := cur.Version()
			_ = cur.Deposit(1, usd, "", time.Now())
			err = s.Append(ctx, command.Append{Account: cur, ExpectedVersion: v})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, command.ErrVersionTaken):
				losses++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	final, err := s.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if wins+losses != workers || final.Balance() != int64(wins) || final.Version() != 1+wins {
		t.Fatalf("wins %d losses %d, final balance %d version %d", wins, losses, final.Balance(), final.Version())
	}
}

// TestAppendGroup: several commands' decisions in one statement, each event
// with its command's metadata and each kept answer under its key; a stale
// expected version stores nothing at all, and the keys' records are looked
// up together, in order.
func TestAppendGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	id := uuid.New()
	now := time.Now()
	a := domain.NewAccount(id)
	if err := a.Open("alice", usd, 0, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, command.Append{Account: a}); err != nil {
		t.Fatal(err)
	}
	a.MarkCommitted()
	for _, amount := range []int64{100, 200} {
		if err := a.Deposit(amount, usd, "", now); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close("", now); !errors.Is(err, domain.ErrBalanceNotZero) {
		t.Fatalf("close = %v", err)
	}
	scope := func(k string) *command.IdempotencyScope {
		return &command.IdempotencyScope{Principal: "alice", Method: "POST", Path: "/accounts/" + id.String() + "/deposit", Key: k}
	}
	g := command.GroupAppend{Account: a, ExpectedVersion: 1, Decisions: []command.Decision{
		{Events: 1, Metadata: command.Metadata{CorrelationID: "first"}, Idempotency: scope("k1"), Fingerprint: []byte{1}, Answer: command.Answer("one")},
		{Events: 0, Metadata: command.Metadata{CorrelationID: "refused"}, Idempotency: scope("k2"), Fingerprint: []byte{2}, Answer: command.Answer("two")},
		{Events: 1, Metadata: command.Metadata{CorrelationID: "second"}},
	}}

	// Another writer took version 2 first: nothing of the group is stored.
	other := domain.NewAccount(id)
	other.Apply(domain.AccountOpened{AccountID: id, OwnerID: "alice", Currency: "USD"}, now)
	if err := other.Deposit(1, usd, "", now); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, command.Append{Account: other, ExpectedVersion: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendGroup(ctx, g); !errors.Is(err, command.ErrVersionTaken) {
		t.Fatalf("group after a lost race = %v; want ErrVersionTaken", err)
	}
	kept, err := s.LookupAnswers(ctx, []command.IdempotencyScope{*scope("k1"), *scope("k2")})
	if err != nil || kept[0] != nil || kept[1] != nil {
		t.Fatalf("records after the lost race = %v, %v; want none", kept, err)
	}

	g.ExpectedVersion = 2
	versioned := domain.NewAccount(id)
	versioned.Apply(domain.AccountOpened{AccountID: id, OwnerID: "alice", Currency: "USD"}, now)
	versioned.Apply(domain.MoneyDeposited{AmountMinor: 1, Currency: "USD"}, now)
	for _, amount := range []int64{100, 200} {
		if err := versioned.Deposit(amount, usd, "", now); err != nil {
			t.Fatal(err)
		}
	}
	g.Account = versioned
	if err := s.AppendGroup(ctx, g); err != nil {
		t.Fatalf("group: %v", err)
	}
	events, err := s.ReadStream(ctx, id, 2, 10)
	if err != nil || len(events) != 2 {
		t.Fatalf("ReadStream = %d events, %v", len(events), err)
	}
	for i, corr := range []string{"first", "second"} {
		var m command.Metadata
		if err := json.Unmarshal(events[i].Metadata, &m); err != nil || m.CorrelationID != corr || events[i].Version != 3+i {
			t.Errorf("event %d: version %d metadata %s; want version %d, correlation %q", i, events[i].Version, events[i].Metadata, 3+i, corr)
		}
	}
	kept, err = s.LookupAnswers(ctx, []command.IdempotencyScope{*scope("k2"), *scope("none"), *scope("k1")})
	if err != nil {
		t.Fatal(err)
	}
	if kept[0] == nil || string(kept[0].Answer) != "two" || kept[1] != nil || kept[2] == nil || string(kept[2].Answer) != "one" || kept[2].Fingerprint[0] != 1 {
		t.Fatalf("records = %+v; want two, none, one in the order asked", kept)
	}
}
