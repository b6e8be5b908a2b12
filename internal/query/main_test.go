package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/query"
	"github.com/evbank/bank/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newReadDB returns a database with the read model's schema only: the queries
// must work against a read database that holds no event store.
func newReadDB(t *testing.T) (*query.Store, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewEmptyDatabase(t)
	if err := store.Migrate(url, store.ReadModelSchema); err != nil {
		t.Fatal(err)
	}
	pool := pgtest.NewPool(t, url)
	return query.New(pool), pool
}

// balanceRow is a row of account_balances to seed.
type balanceRow struct {
	id              uuid.UUID
	owner, currency string
	balance         int64
	status          string
	version         int
	opened, updated time.Time
	closed          *time.Time
}

func seedBalance(t *testing.T, pool *pgxpool.Pool, r balanceRow) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
INSERT INTO account_balances (account_id, owner_id, currency, balance_minor, status, version, opened_at, updated_at, closed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.id, r.owner, r.currency, r.balance, r.status, r.version, r.opened, r.updated, r.closed)
	if err != nil {
		t.Fatal(err)
	}
}

func seedTransaction(t *testing.T, pool *pgxpool.Pool, account uuid.UUID, typ string, amount int64, currency, desc string, after int64, version int, at time.Time) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := pool.Exec(context.Background(), `
INSERT INTO transaction_history (event_id, account_id, type, amount_minor, currency, description, balance_after_minor, version, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, account, typ, amount, currency, desc, after, version, at)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func seedDay(t *testing.T, pool *pgxpool.Pool, account uuid.UUID, day, currency string, depCount int, depTotal int64, wdCount int, wdTotal, closing int64, lastVersion int) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
INSERT INTO daily_summaries (account_id, day, currency, deposits_count, deposits_total_minor, withdrawals_count,
    withdrawals_total_minor, closing_balance_minor, last_version)
VALUES ($1, $2::text::date, $3, $4, $5, $6, $7, $8, $9)`, account, day, currency, depCount, depTotal, wdCount, wdTotal, closing, lastVersion)
	if err != nil {
		t.Fatal(err)
	}
}

// transferRow is a row of transfers to seed; a zero id is a new one.
type transferRow struct {
	id, from, to          uuid.UUID
	amount                int64
	currency, description string
	status                string
	reason                *string
	created               time.Time
	completed             *time.Time
}

func seedTransfer(t *testing.T, pool *pgxpool.Pool, r transferRow) {
	t.Helper()
	if r.id == uuid.Nil {
		r.id = uuid.New()
	}
	_, err := pool.Exec(context.Background(), `
INSERT INTO transfers (transfer_id, from_account_id, to_account_id, amount_minor, currency, description, status, reason, created_at, completed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		r.id, r.from, r.to, r.amount, r.currency, r.description, r.status, r.reason, r.created, r.completed)
	if err != nil {
		t.Fatal(err)
	}
}

// ts is a fixed instant with microsecond precision, as PostgreSQL keeps it.
func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}
