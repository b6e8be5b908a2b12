package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
	"github.com/evbank/bank/internal/testwait"
)

type execer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// TestMain is in main_test.go.

// insertEvent stores one event as the event store does and returns its global position.
func insertEvent(t *testing.T, q execer, stream uuid.UUID, version int, typ string, schemaVersion int, data string) int64 {
	t.Helper()
	var pos int64
	err := q.QueryRow(context.Background(), `
INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
VALUES ($1, 'BankAccount', $2, $3, $4, $5, $6) RETURNING global_position`,
		stream, version, uuid.New(), typ, schemaVersion, data).Scan(&pos)
	if err != nil {
		t.Fatalf("insert %s v%d: %v", typ, version, err)
	}
	return pos
}

func opened(id uuid.UUID) string {
	return fmt.Sprintf(`{"account_id":%q,"owner_id":"o","currency":"EUR","opened_at":"2024-01-02T03:04:05Z"}`, id)
}

func newTailer(t *testing.T) (*store.Tailer, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	return store.NewTailer(pool, domain.UpcastContext{DefaultCurrency: domain.MustCurrency("JPY")}), pool
}

// readSettled reads once no committed event of this database waits for an
// open transaction: xmin is cluster-wide, and parallel tests hold transactions.
func readSettled(t *testing.T, tl *store.Tailer, after eventlog.Position, limit int) eventlog.TailBatch {
	t.Helper()
	var b eventlog.TailBatch
	testwait.For(10*time.Second, func() bool {
		var err error
		if b, err = tl.Read(context.Background(), after, limit); err != nil {
			t.Fatal(err)
		}
		return !b.HeldBack
	})
	return b
}

func positions(es []eventlog.RecordedEvent) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.GlobalPosition
	}
	return out
}

func TestTailerReadsInOrderUpcastsAndPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tl, pool := newTailer(t)

	b, err := tl.Read(ctx, eventlog.Position{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 0 || b.Head != (eventlog.Head{}) || b.HeldBack {
		t.Fatalf("empty store: got %+v", b)
	}

	id := uuid.New()
	insertEvent(t, pool, id, 1, domain.TypeAccountOpened, 2, opened(id))
	insertEvent(t, pool, id, 2, domain.TypeMoneyDeposited, 2, `{"amount_minor":1250,"currency":"EUR","description":"pay"}`)
	// Legacy shape: major units, no currency; the tailer's default (JPY) applies.
	last := insertEvent(t, pool, id, 3, domain.TypeMoneyWithdrawn, 1, `{"amount":7,"description":"old","timestamp":"2020-01-01T00:00:00Z"}`)

	b = readSettled(t, tl, eventlog.Position{}, 2)
	if len(b.Events) != 2 || b.Events[0].Version != 1 || b.Events[1].Version != 2 {
		t.Fatalf("first page: %+v", b.Events)
	}
	if b.Head.GlobalPosition != last || b.Head.RecordedAt.IsZero() {
		t.Fatalf("head = %+v, want position %d", b.Head, last)
	}
	dep, ok := b.Events[1].Event.(domain.MoneyDeposited)
	if !ok || dep.AmountMinor != 1250 || dep.Description != "pay" || b.Events[1].TransactionID == 0 || b.Events[1].StreamID != id {
		t.Fatalf("second event: %+v", b.Events[1])
	}

	b = readSettled(t, tl, eventlog.PositionOf(b.Events[1]), 10)
	if len(b.Events) != 1 {
		t.Fatalf("second page: %+v", b.Events)
	}
	w, ok := b.Events[0].Event.(domain.MoneyWithdrawn)
	if !ok || w.AmountMinor != 7 || w.Currency != "JPY" || b.Events[0].SchemaVersion != 1 {
		t.Fatalf("upcast legacy event: %+v", b.Events[0])
	}
	if string(b.Events[0].Data) == "" {
		t.Fatal("no upcast data")
	}
}

// TestTailerWaitsForLateCommit is the gap that a reader checkpointing
// global_position alone falls into: an early identity value committed late.
func TestTailerWaitsForLateCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tl, pool := newTailer(t)
	a, b := uuid.New(), uuid.New()

	// Transaction A takes its transaction id and a low position, then stays open.
	txA, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = txA.Rollback(ctx) }()
	posA := insertEvent(t, txA, a, 1, domain.TypeAccountOpened, 2, opened(a))
	// B commits a higher position.
	posB := insertEvent(t, pool, b, 1, domain.TypeAccountOpened, 2, opened(b))
	if posB <= posA {
		t.Fatalf("positions %d, %d", posA, posB)
	}

	got, err := tl.Read(ctx, eventlog.Position{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != 0 || !got.HeldBack || got.Head.GlobalPosition != posB {
		t.Fatalf("with A open: events %v held back %v head %+v; want none, held back, head %d", positions(got.Events), got.HeldBack, got.Head, posB)
	}
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got = readSettled(t, tl, eventlog.Position{}, 10)
	if want := []int64{posA, posB}; fmt.Sprint(positions(got.Events)) != fmt.Sprint(want) || got.HeldBack {
		t.Fatalf("after commit: %v held back %v, want %v", positions(got.Events), got.HeldBack, want)
	}
}

func TestTailerCheckpointAheadOfServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tl, pool := newTailer(t)
	id := uuid.New()
	insertEvent(t, pool, id, 1, domain.TypeAccountOpened, 2, opened(id))

	var next uint64
	if err := pool.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	ahead := eventlog.Position{TransactionID: next + 100000, GlobalPosition: 1}
	_, err := tl.Read(ctx, ahead, 10)
	var cae *eventlog.CheckpointAheadError
	if !errors.As(err, &cae) || !errors.Is(err, eventlog.ErrRebuildRequired) || cae.Checkpoint != ahead {
		t.Fatalf("checkpoint ahead: err = %v", err)
	}
	t.Log(err)

	// Restored events from a cluster whose transaction ids ran further.
	if _, err := pool.Exec(ctx, `
INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, transaction_id)
VALUES ($1, 'BankAccount', 2, $2, 'MoneyDeposited', 2, '{"amount_minor":1,"currency":"EUR","description":""}', $3::xid8)`,
		id, uuid.New(), next+500000); err != nil {
		t.Fatal(err)
	}
	_, err = tl.Read(ctx, eventlog.Position{}, 10)
	if !errors.As(err, &cae) || cae.EventTransactionID != next+500000 || !errors.Is(err, eventlog.ErrRebuildRequired) {
		t.Fatalf("events ahead: err = %v", err)
	}
	t.Log(err)
}

func TestTailerUpcastErrorNamesPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tl, pool := newTailer(t)
	id := uuid.New()
	insertEvent(t, pool, id, 1, domain.TypeAccountOpened, 1, fmt.Sprintf(`{"accountId":%q,"ownerId":"o","openedAt":"2020-01-01T00:00:00Z"}`, id))
	// 1.5 JPY has no exact minor-unit amount.
	pos := insertEvent(t, pool, id, 2, domain.TypeMoneyDeposited, 1, `{"amount":1.5,"description":"x"}`)
	var err error
	testwait.For(10*time.Second, func() bool {
		_, err = tl.Read(ctx, eventlog.Position{}, 10)
		return err != nil
	})
	var ue *eventlog.UpcastError
	if !errors.As(err, &ue) || ue.GlobalPosition != pos || ue.StreamID != id || ue.Version != 2 {
		t.Fatalf("err = %v, want an UpcastError at position %d", err, pos)
	}
}

func TestTailPoolSetsIdleInTransactionTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := store.ParseTailPoolConfig(pgtest.NewDatabase(t), 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var v string
	if err := pool.QueryRow(ctx, `SHOW idle_in_transaction_session_timeout`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "1500ms" {
		t.Fatalf("idle_in_transaction_session_timeout = %q, want 1500ms", v)
	}
}

func TestHoldingTransactionsNamesTheSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tl, pool := newTailer(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var xid uint64
	var pid int
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id(), pg_backend_pid()`).Scan(&xid, &pid); err != nil {
		t.Fatal(err)
	}
	hs, err := tl.HoldingTransactions(ctx, xid)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].PID != pid {
		t.Fatalf("holding = %+v, want pid %d", hs, pid)
	}
}
