package projection

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/testwait"
)

// insertCycles stores, in one statement (so on one recorded_at, one UTC day),
// an opened account and n cycles of depositing and withdrawing 10^15 minor
// units: legal events whose day totals pass 2^63 past about 9,223 cycles.
func insertCycles(t *testing.T, e *env, id uuid.UUID, n int) {
	t.Helper()
	typ, _, opened := eventFor(id, 1)
	_, err := e.events.Exec(context.Background(), `
INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
SELECT $1::uuid, 'BankAccount', 1, gen_random_uuid(), $2::text, 2, $3::jsonb
UNION ALL
SELECT $1::uuid, 'BankAccount', v, gen_random_uuid(),
       CASE WHEN v % 2 = 0 THEN 'MoneyDeposited' ELSE 'MoneyWithdrawn' END, 2,
       jsonb_build_object('amount_minor', $4::bigint, 'currency', 'USD', 'description', '')
FROM generate_series(2, 2 * $5::int + 1) AS v`, id, typ, opened, domain.MaxMinor, n)
	if err != nil {
		t.Fatal(err)
	}
}

// TestDailyTotalsPastInt64: a day's totals past 2^63 minor units are applied
// exactly, other accounts' events keep applying, and the verify and rebuild
// folds agree with the live projection.
func TestDailyTotalsPastInt64(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	before, big, after := uuid.New(), uuid.New(), uuid.New()
	appendN(t, e.events, before, 4)
	const cycles = 9_300
	insertCycles(t, e, big, cycles)
	appendN(t, e.events, after, 4)
	appendN(t, e.events, before, 2)

	r := e.runner(t, Options{})
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	var deposits, withdrawals string
	var n int
	if err := e.read.QueryRow(ctx, `SELECT deposits_total_minor::text, withdrawals_total_minor::text, deposits_count
FROM daily_summaries WHERE account_id = $1`, big).Scan(&deposits, &withdrawals, &n); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d%015d", cycles, 0) // cycles x 10^15, past 2^63 = 9223372036854775808
	if deposits != want || withdrawals != want || n != cycles {
		t.Fatalf("day of %s: deposits %s (%d), withdrawals %s; want %s each", big, deposits, n, withdrawals, want)
	}
	for _, id := range []uuid.UUID{before, after} {
		if v := count(t, e.read, `SELECT version FROM account_balances WHERE account_id = $1`, id); v == 0 {
			t.Fatalf("account %s not projected", id)
		}
	}
	// The verify fold agrees (assertTablesMatchReplay), and so does a rebuild.
	live := assertTablesMatchReplay(t, e)
	if _, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{})); err != nil {
		t.Fatal(err)
	}
	rebuilt := assertTablesMatchReplay(t, e)
	if ds := Compare(live, rebuilt); len(ds) > 0 {
		t.Fatalf("the rebuild differs from the live projection: %v", ds[0])
	}
	rep, err := Verify(ctx, e.tailer, e.read)
	if err != nil || len(rep.Drifts) > 0 {
		t.Fatalf("Verify = %v, %v", rep, err)
	}
}

// TestFailingBatchIsSeen poisons an event that the read tables refuse: the
// failures are counted, the lag keeps rising, Failing names the event, and
// once the cause is gone the Runner goes on. An event that cannot be upcast
// stops the Runner, counted and measured too.
func TestFailingBatchIsSeen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ok, poisoned := uuid.New(), uuid.New()
	appendN(t, e.events, ok, 3)
	r := e.runner(t, Options{StandbyRetry: 40 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	waitCaughtUp(t, e, r)

	// A constraint the projection does not know of stands for any write the
	// read database refuses (the bigint overflow of issue 9 was one).
	if _, err := e.read.Exec(ctx, `ALTER TABLE transaction_history ADD CONSTRAINT poison CHECK (description <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	typ, _, data := eventFor(poisoned, 1)
	insertAt(t, e.events, poisoned, 1, typ, data, time.Now())
	insertAt(t, e.events, poisoned, 2, domain.TypeMoneyDeposited, `{"amount_minor":5,"currency":"USD","description":"poison"}`, time.Now())
	poisonAt := lastPosition(t, e.events)
	appendN(t, e.events, ok, 2)

	var f Failure
	testwait.Until(t, 20*time.Second, func() (bool, string) {
		var failing bool
		f, failing = r.Failing()
		return failing && f.Count >= 3 && strings.Contains(f.Event, poisonAt.String()), fmt.Sprintf("failing %v: %+v", failing, f)
	})
	if !strings.Contains(f.Event, poisoned.String()) {
		t.Errorf("Failing names %q, not the poisoned stream %s", f.Event, poisoned)
	}
	if n := gaugeValue(t, r.m.batchFailures); n < 3 {
		t.Errorf("projector_batch_failures_total = %v", n)
	}
	if lag := gaugeValue(t, r.m.lagPositions.WithLabelValues(TransactionHistoryName)); lag < 3 {
		t.Errorf("lag positions = %v while the batch fails", lag)
	}
	first := gaugeValue(t, r.m.lagSeconds.WithLabelValues(TransactionHistoryName))
	testwait.Until(t, 10*time.Second, func() (bool, string) {
		now := gaugeValue(t, r.m.lagSeconds.WithLabelValues(TransactionHistoryName))
		return now > first && now > 0, fmt.Sprintf("lag seconds %v, was %v: not rising while batches fail", now, first)
	})

	if _, err := e.read.Exec(ctx, `ALTER TABLE transaction_history DROP CONSTRAINT poison`); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, e, r)
	if _, failing := r.Failing(); failing {
		t.Error("still failing after catching up")
	}
	assertTablesMatchReplay(t, e)

	// Counted before the insert: the runner may fail on it at once.
	failures := gaugeValue(t, r.m.batchFailures)
	// 1.234 dollars do not fit USD's minor units: the event cannot be read.
	if _, err := e.events.Exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
VALUES ($1, 'BankAccount', 3, gen_random_uuid(), 'MoneyDeposited', 1, '{"amount":1.234,"description":"","timestamp":"2019-01-01T00:00:00Z"}')`, poisoned); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var up *eventlog.UpcastError
		if !errors.As(err, &up) {
			t.Fatalf("Run = %v, want an UpcastError", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop on an event that cannot be read")
	}
	stop()
	if n := gaugeValue(t, r.m.batchFailures); n != failures+1 {
		t.Errorf("projector_batch_failures_total = %v, want %v", n, failures+1)
	}
	if lag := gaugeValue(t, r.m.lagPositions.WithLabelValues(AccountBalancesName)); lag != 1 {
		t.Errorf("lag positions = %v after the unreadable event, want 1", lag)
	}
	if f, _ := r.Failing(); !strings.Contains(f.Event, poisoned.String()) {
		t.Errorf("Failing = %+v, does not name %s", f, poisoned)
	}
}
