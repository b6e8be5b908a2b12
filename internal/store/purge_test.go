package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

// TestPurgeIdempotencyKeysInBatches: expired records go, fresh ones stay, in
// statements of at most the batch size; while another session holds the purge
// lock (another api instance purging), a purge does nothing and says so.
func TestPurgeIdempotencyKeysInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool := pgtest.NewPool(t, url)
	s := store.NewEventStore(pool, store.Options{DefaultCurrency: usd})

	insert := func(n int, age time.Duration, prefix string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `
INSERT INTO idempotency_keys (method, path, idempotency_key, request_hash, answer, created_at)
SELECT 'POST', '/accounts', $1 || i, '\x00', '\x00', now() - $2::interval
FROM generate_series(1, $3) AS i`, prefix, age, n); err != nil {
			t.Fatal(err)
		}
	}
	insert(25, 25*time.Hour, "old-")
	insert(5, 23*time.Hour, "fresh-")
	insert(3, time.Minute, "new-")

	// Another instance is purging: this one leaves at once.
	other := pgtest.NewPool(t, url)
	conn, err := other.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, store.PurgeLockKey); err != nil {
		t.Fatal(err)
	}
	res, err := s.PurgeIdempotencyKeys(ctx, 24*time.Hour, 10)
	if err != nil || !res.Busy || res.Deleted != 0 || res.Batches != 0 {
		t.Errorf("purge while another holds the lock = %+v, %v; want busy, nothing done", res, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, store.PurgeLockKey); err != nil {
		t.Fatal(err)
	}
	conn.Release()

	res, err = s.PurgeIdempotencyKeys(ctx, 24*time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	// 25 rows in batches of 10: 10, 10, 5.
	if res.Deleted != 25 || res.Batches != 3 || res.Busy {
		t.Errorf("purge = %+v, want 25 deleted in 3 batches", res)
	}
	var left, old int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE idempotency_key LIKE 'old-%') FROM idempotency_keys`).Scan(&left, &old); err != nil {
		t.Fatal(err)
	}
	if left != 8 || old != 0 {
		t.Errorf("%d records left (%d expired), want the 8 fresh ones", left, old)
	}

	// The lock was let go: the next purge runs (and finds nothing).
	res, err = s.PurgeIdempotencyKeys(ctx, 24*time.Hour, 10)
	if err != nil || res.Busy || res.Deleted != 0 || res.Batches != 1 {
		t.Errorf("second purge = %+v, %v; want one empty batch", res, err)
	}
	var held int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Errorf("%d advisory locks held after the purges", held)
	}
}
