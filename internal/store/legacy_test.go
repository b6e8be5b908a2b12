package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

// insertLegacy writes one event as the older service did: schema version 1,
// camelCase, amounts as JSON numbers in major units, no currency.
func insertLegacy(t *testing.T, ctx context.Context, exec func(ctx context.Context, sql string, args ...any) error, id uuid.UUID, version int, eventType, data string, at time.Time) {
	t.Helper()
	err := exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata, recorded_at)
VALUES ($1, 'BankAccount', $2, $3, $4, 1, $5, '{}', $6)`, id, version, uuid.New(), eventType, data, at)
	if err != nil {
		t.Fatal(err)
	}
}

func TestLegacyAndMixedStreamsLoadAndAcceptCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	exec := func(ctx context.Context, sql string, args ...any) error {
		_, err := pool.Exec(ctx, sql, args...)
		return err
	}
	s := store.NewEventStore(pool, store.Options{DefaultCurrency: usd})
	id := uuid.New()
	t0 := time.Date(2019, 3, 1, 9, 0, 0, 0, time.UTC)
	insertLegacy(t, ctx, exec, id, 1, "AccountOpened", `{"accountId":"`+id.String()+`","ownerId":"legacy-owner","openedAt":"2019-03-01T09:00:00Z"}`, t0)
	insertLegacy(t, ctx, exec, id, 2, "MoneyDeposited", `{"amount":125.5,"description":"salary","timestamp":"2019-03-02T09:00:00Z"}`, t0.Add(24*time.Hour))
	insertLegacy(t, ctx, exec, id, 3, "MoneyWithdrawn", `{"amount":25.25,"description":"rent","timestamp":"2019-03-03T09:00:00Z"}`, t0.Add(48*time.Hour))

	// A v2 event after the legacy ones, as the current service appends it.
	a, err := s.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance() != 10025 || a.Currency().Code() != "USD" || a.OwnerID() != "legacy-owner" || a.Version() != 3 {
		t.Fatalf("legacy stream folded to balance %d %s owner %q version %d", a.Balance(), a.Currency(), a.OwnerID(), a.Version())
	}
	if err := a.Deposit(75, usd, "v2 deposit", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, command.Append{Account: a, ExpectedVersion: 3}); err != nil {
		t.Fatal(err)
	}
	a, err = s.Load(ctx, id)
	if err != nil || a.Balance() != 10100 || a.Version() != 4 {
		t.Fatalf("mixed stream = balance %d version %d, %v", a.Balance(), a.Version(), err)
	}

	events, err := s.ReadStream(ctx, id, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if events[1].SchemaVersion != 1 || string(events[1].Data) != `{"amount_minor":12550,"currency":"USD","description":"salary"}` {
		t.Fatalf("legacy deposit read as schema %d data %s", events[1].SchemaVersion, events[1].Data)
	}

	// as_of: before opening, between two events, after the last.
	if _, err := s.LoadAsOf(ctx, id, t0.Add(-time.Second)); !errors.Is(err, domain.ErrAccountNotFound) {
		t.Fatalf("as of before opening = %v; want account not found", err)
	}
	mid, err := s.LoadAsOf(ctx, id, t0.Add(36*time.Hour))
	if err != nil || mid.Balance() != 12550 || mid.Version() != 2 {
		t.Fatalf("as of between events = balance %d version %d, %v", mid.Balance(), mid.Version(), err)
	}
}

func TestUnreadableLegacyEventFailsLoudlyWithItsPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	exec := func(ctx context.Context, sql string, args ...any) error {
		_, err := pool.Exec(ctx, sql, args...)
		return err
	}
	s := store.NewEventStore(pool, store.Options{DefaultCurrency: usd})
	id := uuid.New()
	now := time.Now()
	insertLegacy(t, ctx, exec, id, 1, "AccountOpened", `{"accountId":"`+id.String()+`","ownerId":"x","openedAt":"2019-03-01T09:00:00Z"}`, now)
	// A third of a cent cannot be held in USD minor units: never round it.
	insertLegacy(t, ctx, exec, id, 2, "MoneyDeposited", `{"amount":0.333,"description":"","timestamp":"2019-03-01T09:00:00Z"}`, now)
	_, err := s.Load(ctx, id)
	var uerr *eventlog.UpcastError
	if !errors.As(err, &uerr) || uerr.Version != 2 || uerr.GlobalPosition == 0 {
		t.Fatalf("Load = %v; want an UpcastError naming version 2 and its position", err)
	}
}
