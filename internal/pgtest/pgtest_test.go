package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseIsMigratedAndIsolated(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := NewPool(t, NewDatabase(t))
	b := NewPool(t, NewDatabase(t))

	for _, table := range []string{"events", "snapshots", "idempotency_keys", "account_balances", "transaction_history", "daily_summaries"} {
		var exists bool
		if err := a.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s: exists=%v err=%v", table, exists, err)
		}
	}

	_, err := a.Exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
		VALUES (gen_random_uuid(), 'BankAccount', 1, gen_random_uuid(), 'AccountOpened', 2, '{}')`)
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil || n != 0 {
		t.Errorf("other database sees %d events (err %v)", n, err)
	}

	_, err = a.Exec(ctx, "UPDATE events SET event_type = 'Tampered'")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, "append-only") {
		t.Errorf("UPDATE on events: %v, want the append-only trigger's error", err)
	}
}

func TestNewEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool := NewPool(t, NewEmptyDatabase(t))
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil || n != 0 {
		t.Errorf("empty database has %d tables (err %v)", n, err)
	}
}

func TestDatabasesAreDroppedAfterTheTest(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("inner", func(t *testing.T) {
		pool := NewPool(t, NewDatabase(t))
		if err := pool.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	var exists bool
	if err := NewPool(t, Server()).QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		t.Errorf("database %s still exists after its test (err %v)", name, err)
	}
}

func TestParallelCreation(t *testing.T) {
	t.Parallel()
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			NewPool(t, NewDatabase(t))
		})
	}
}
