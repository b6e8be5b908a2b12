package query_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/query"
)

func TestWaitForVersion(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()
	at := ts("2024-01-01T00:00:00Z")
	id := uuid.New()
	seedBalance(t, pool, balanceRow{id: id, owner: "o", currency: "USD", status: "active", version: 3, opened: at, updated: at})

	t.Run("already there", func(t *testing.T) {
		for _, v := range []int{1, 3} {
			start := time.Now()
			if err := q.WaitForVersion(ctx, id, v, time.Second); err != nil {
				t.Fatalf("version %d: %v", v, err)
			}
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("version %d: returned after %s, want at once", v, d)
			}
		}
	})

	t.Run("lagging", func(t *testing.T) {
		start := time.Now()
		err := q.WaitForVersion(ctx, id, 4, 150*time.Millisecond)
		elapsed := time.Since(start)
		var lag *query.LaggingError
		if !errors.Is(err, query.ErrProjectionLagging) || !errors.As(err, &lag) {
			t.Fatalf("err = %v, want a *LaggingError", err)
		}
		if lag.AccountID != id || lag.Want != 4 || lag.Have != 3 {
			t.Errorf("lag = %+v", lag)
		}
		if elapsed < 150*time.Millisecond || elapsed > time.Second {
			t.Errorf("gave up after %s, want about 150ms", elapsed)
		}
	})

	t.Run("no row yet", func(t *testing.T) {
		var lag *query.LaggingError
		err := q.WaitForVersion(ctx, uuid.New(), 1, 20*time.Millisecond)
		if !errors.As(err, &lag) || lag.Have != 0 {
			t.Fatalf("err = %v, want a *LaggingError with Have 0", err)
		}
	})

	t.Run("reached while waiting", func(t *testing.T) {
		other := uuid.New()
		seedBalance(t, pool, balanceRow{id: other, owner: "o", currency: "USD", status: "active", version: 1, opened: at, updated: at})
		const delay = 200 * time.Millisecond
		done := make(chan error, 1)
		go func() {
			time.Sleep(delay)
			_, err := pool.Exec(context.Background(), `UPDATE account_balances SET version = 2 WHERE account_id = $1`, other)
			done <- err
		}()
		start := time.Now()
		err := q.WaitForVersion(ctx, other, 2, 5*time.Second)
		elapsed := time.Since(start)
		if uerr := <-done; uerr != nil {
			t.Fatal(uerr)
		}
		if err != nil {
			t.Fatal(err)
		}
		// Polls are at most 20 ms apart.
		if elapsed < delay || elapsed > delay+500*time.Millisecond {
			t.Errorf("returned after %s, want just after %s", elapsed, delay)
		}
	})

	t.Run("context ends first", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		err := q.WaitForVersion(cctx, id, 9, 5*time.Second)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
	})
}

// TestWaitForVersionIn: a query of the transfers table waits, past the
// account's version, for the transfers checkpoint to reach account_balances'
// (a projection catching up alone), and says which projection is behind.
func TestWaitForVersionIn(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()
	at := ts("2024-01-01T00:00:00Z")
	id := uuid.New()
	seedBalance(t, pool, balanceRow{id: id, owner: "o", currency: "USD", status: "active", version: 3, opened: at, updated: at})
	checkpoint := func(name, tx string, pos int64) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (projection, transaction_id, global_position) VALUES ($1, $2::text::xid8, $3)
ON CONFLICT (projection) DO UPDATE SET transaction_id = excluded.transaction_id, global_position = excluded.global_position`, name, tx, pos); err != nil {
			t.Fatal(err)
		}
	}

	// No checkpoints at all (nothing projected): nothing to be behind.
	if err := q.WaitForVersionIn(ctx, "transfers", id, 3, time.Second); err != nil {
		t.Fatalf("no checkpoints: %v", err)
	}
	checkpoint("account_balances", "10", 50)
	// No transfers row yet (position zero), then one behind: lagging, named.
	for _, behind := range []struct {
		tx  string
		pos int64
	}{{"", 0}, {"10", 49}, {"9", 70}} {
		if behind.tx != "" {
			checkpoint("transfers", behind.tx, behind.pos)
		}
		err := q.WaitForVersionIn(ctx, "transfers", id, 3, 60*time.Millisecond)
		var lag *query.LaggingError
		if !errors.As(err, &lag) || lag.Behind != "transfers" || !errors.Is(err, query.ErrProjectionLagging) {
			t.Fatalf("transfers at %s/%d: err = %v, want a *LaggingError naming transfers", behind.tx, behind.pos, err)
		}
	}
	// It catches up while the request waits.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = pool.Exec(ctx, `UPDATE projection_checkpoints SET transaction_id = '11', global_position = 1 WHERE projection = 'transfers'`)
	}()
	if err := q.WaitForVersionIn(ctx, "transfers", id, 3, 5*time.Second); err != nil {
		t.Fatalf("catching up: %v", err)
	}
	// The account's own version still comes first.
	var lag *query.LaggingError
	if err := q.WaitForVersionIn(ctx, "transfers", id, 4, 30*time.Millisecond); !errors.As(err, &lag) || lag.Behind != "" || lag.Have != 3 {
		t.Fatalf("version 4: err = %v, want the account's own lag", err)
	}
}
