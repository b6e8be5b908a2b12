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
