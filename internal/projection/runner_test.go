package projection

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
	"github.com/evbank/bank/internal/testwait"
)

// TestFoldValues checks the tables against hand-computed values: batches that
// split a stream, a legacy event, a missing description, two UTC days, a close.
func TestFoldValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	id := uuid.New()
	day1 := time.Date(2024, 3, 1, 23, 59, 59, 0, time.UTC)
	day2 := time.Date(2024, 3, 2, 0, 0, 1, 0, time.UTC)
	insertAt(t, e.events, id, 1, domain.TypeAccountOpened, fmt.Sprintf(`{"account_id":%q,"owner_id":"ann","currency":"USD","opened_at":"2024-03-01T10:00:00Z"}`, id), day1.Add(-time.Hour))
	insertAt(t, e.events, id, 2, domain.TypeMoneyDeposited, `{"amount_minor":1000,"currency":"USD","description":"initial deposit"}`, day1.Add(-time.Minute))
	insertAt(t, e.events, id, 3, domain.TypeMoneyWithdrawn, `{"amount_minor":300,"currency":"USD"}`, day1)
	if _, err := e.events.Exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, recorded_at)
VALUES ($1, 'BankAccount', 4, $2, 'MoneyDeposited', 1, '{"amount":2.5,"description":"old"}', $3)`, id, uuid.New(), day2); err != nil {
		t.Fatal(err)
	}
	insertAt(t, e.events, id, 5, domain.TypeMoneyWithdrawn, `{"amount_minor":950,"currency":"USD","description":"all"}`, day2.Add(time.Second))
	insertAt(t, e.events, id, 6, domain.TypeAccountClosed, `{"reason":"bye","closed_at":"2024-03-02T00:00:03Z"}`, day2.Add(2*time.Second))

	r := e.runner(t, Options{BatchSize: 2})
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got := assertTablesMatchReplay(t, e)

	b := got.Balances[id]
	closed := time.Date(2024, 3, 2, 0, 0, 3, 0, time.UTC)
	if b.OwnerID != "ann" || b.Currency != "USD" || b.BalanceMinor != 0 || b.Status != "closed" || b.Version != 6 ||
		b.ClosedAt == nil || !b.ClosedAt.Equal(closed) || !b.UpdatedAt.Equal(day2.Add(2*time.Second)) ||
		!b.OpenedAt.Equal(time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("balance row: %+v", b)
	}
	type tx struct {
		typ          string
		amount, left int64
		desc         string
		version      int
	}
	var txs []tx
	for v := 2; v <= 5; v++ {
		for _, h := range got.History {
			if h.Version == v {
				txs = append(txs, tx{h.Type, h.AmountMinor, h.BalanceAfterMinor, h.Description, h.Version})
			}
		}
	}
	want := []tx{{"deposit", 1000, 1000, "initial deposit", 2}, {"withdrawal", 300, 700, "", 3}, {"deposit", 250, 950, "old", 4}, {"withdrawal", 950, 0, "all", 5}}
	if fmt.Sprint(txs) != fmt.Sprint(want) || len(got.History) != 4 {
		t.Errorf("history: %v, want %v", txs, want)
	}
	d1 := got.Daily[readmodel.DayKey{AccountID: id, Day: readmodel.UTCDay(day1)}]
	d2 := got.Daily[readmodel.DayKey{AccountID: id, Day: readmodel.UTCDay(day2)}]
	if d1.DepositsCount != 1 || d1.DepositsTotalMinor.String() != "1000" || d1.WithdrawalsCount != 1 || d1.WithdrawalsTotalMinor.String() != "300" || d1.ClosingBalanceMinor != 700 || d1.LastVersion != 3 {
		t.Errorf("day 1: %+v", d1)
	}
	if d2.DepositsCount != 1 || d2.DepositsTotalMinor.String() != "250" || d2.WithdrawalsCount != 1 || d2.WithdrawalsTotalMinor.String() != "950" || d2.ClosingBalanceMinor != 0 || d2.LastVersion != 5 || d2.Currency != "USD" {
		t.Errorf("day 2: %+v", d2)
	}
	if len(got.Daily) != 2 {
		t.Errorf("daily rows: %d, want 2", len(got.Daily))
	}
	if n := gaugeValue(t, r.m.eventsApplied.WithLabelValues(TransactionHistoryName)); n != 6 {
		t.Errorf("events applied to transaction_history: %v, want 6", n)
	}
	if lag := gaugeValue(t, r.m.lagPositions.WithLabelValues(AccountBalancesName)); lag != 0 {
		t.Errorf("lag positions after catching up: %v", lag)
	}
}

// TestTwoRunnersApplyEachEventOnce lets two Runners that both believe they
// are active race on the same databases: the compare-and-set checkpoint must
// let exactly one apply each batch, without duplicate-key errors.
func TestTwoRunnersApplyEachEventOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	runners := []*Runner{e.runner(t, Options{BatchSize: 7}), e.runner(t, Options{BatchSize: 7})}

	var appendersDone atomic.Bool
	var moved [2]int
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				finished := appendersDone.Load()
				err := r.CatchUp(ctx)
				switch {
				case errors.Is(err, ErrCheckpointMoved):
					moved[i]++
					continue
				case err != nil:
					errs <- fmt.Errorf("runner %d: %w", i, err)
					return
				case finished:
					return
				}
			}
		}()
	}
	var apps sync.WaitGroup
	shared := uuid.New()
	for w := range 4 {
		apps.Add(1)
		go func() {
			defer apps.Done()
			own := uuid.New()
			for j := range 60 {
				stream := own
				if j%3 == w%3 {
					stream = shared
				}
				if _, err := appendOne(ctx, e.events, stream, 0); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	apps.Wait()
	appendersDone.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Each runner's last CatchUp started after the appends: both are caught up.
	if err := runners[0].CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	assertTablesMatchReplay(t, e)
	money := count(t, e.events, `SELECT count(*) FROM events WHERE event_type IN ('MoneyDeposited', 'MoneyWithdrawn')`)
	if rows := count(t, e.read, `SELECT count(*) FROM transaction_history`); rows != money {
		t.Fatalf("transaction_history has %d rows for %d money events", rows, money)
	}
	applied := gaugeValue(t, runners[0].m.eventsApplied.WithLabelValues(AccountBalancesName)) +
		gaugeValue(t, runners[1].m.eventsApplied.WithLabelValues(AccountBalancesName))
	if total := count(t, e.events, `SELECT count(*) FROM events`); int(applied) != total {
		t.Fatalf("the two runners applied %v events to account_balances between them; the store holds %d", applied, total)
	}
	t.Logf("checkpoint conflicts: runner 0 lost %d batches, runner 1 lost %d", moved[0], moved[1])
}

// TestContiguityGuard forges gaps: the Runner stops with an error naming the
// stream and the versions, and writes nothing.
func TestContiguityGuard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	id := uuid.New()
	appendN(t, e.events, id, 5)
	r := e.runner(t, Options{})
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	before := r.Checkpoints()

	// Version 7 arrives while the tables hold version 5.
	typ, _, data := eventFor(id, 7)
	insertAt(t, e.events, id, 7, typ, data, time.Now())
	err := r.CatchUp(ctx)
	var ce *ContiguityError
	if !errors.As(err, &ce) || ce.StreamID != id || ce.Have != 5 || ce.Got != 7 || !errors.Is(err, ErrInconsistent) {
		t.Fatalf("CatchUp = %v, want a ContiguityError for stream %s, 7 after 5", err, id)
	}
	for _, s := range []string{id.String(), "version 7", "version 5"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
	t.Log(err)
	if after := r.Checkpoints(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("checkpoints moved: %v -> %v", before, after)
	}
	if v := count(t, e.read, `SELECT version FROM account_balances WHERE account_id = $1`, id); v != 5 {
		t.Fatalf("account_balances at version %d, want 5", v)
	}
	// Run stops on it too, rather than retry for ever.
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case err := <-done:
		if !errors.As(err, &ce) {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop on the gap")
	}

	// A gap inside one batch: 1, 2, 4.
	other := uuid.New()
	appendN(t, e.events, other, 2)
	typ, _, data = eventFor(other, 4)
	insertAt(t, e.events, other, 4, typ, data, time.Now())
	// Past the forged version 7, as if an operator had dealt with it.
	v7 := lastOf(t, e, id, 7)
	if _, err := e.read.Exec(ctx, `UPDATE projection_checkpoints SET transaction_id = $1::xid8, global_position = $2`,
		v7.TransactionID, v7.GlobalPosition); err != nil {
		t.Fatal(err)
	}
	r2 := e.runner(t, Options{})
	err = r2.CatchUp(ctx)
	if !errors.As(err, &ce) || ce.StreamID != other || ce.Have != 2 || ce.Got != 4 {
		t.Fatalf("CatchUp over 1, 2, 4 = %v", err)
	}
}

// TestContiguityGuardOnCachedState has the gap arrive in the same run as the
// versions before it, so the guard checks the state the Runner kept in memory.
func TestContiguityGuardOnCachedState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := uuid.New()
	appendN(t, e.events, id, 5)
	r := e.runner(t, Options{BatchSize: 5})
	// Versions 1-5 applied first, in their own CatchUp: were the gap already
	// there, a transaction elsewhere on the server could hold version 5 back
	// into the batch of version 7, whose own check would then refuse it
	// before the cached state is ever consulted.
	if err := r.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	typ, _, data := eventFor(id, 7)
	insertAt(t, e.events, id, 7, typ, data, time.Now())
	err := r.CatchUp(context.Background())
	var ce *ContiguityError
	if !errors.As(err, &ce) || ce.StreamID != id || ce.Have != 5 || ce.Got != 7 || ce.Projection == "batch" {
		t.Fatalf("CatchUp = %v, want 7 after 5 from a projection's cached state", err)
	}
	if v := count(t, e.read, `SELECT version FROM account_balances WHERE account_id = $1`, id); v != 5 {
		t.Fatalf("account_balances at version %d, want 5", v)
	}
}

// lastOf returns the position of version v of stream id.
func lastOf(t *testing.T, e *env, id uuid.UUID, v int) eventlog.Position {
	t.Helper()
	var p eventlog.Position
	if err := e.events.QueryRow(context.Background(), `SELECT transaction_id, global_position FROM events WHERE stream_id = $1 AND version = $2`, id, v).
		Scan(&p.TransactionID, &p.GlobalPosition); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerifyNamesDriftedAccounts corrupts the tables and expects Verify to name
// exactly the accounts concerned.
func TestVerifyNamesDriftedAccounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{a, b, c} {
		appendN(t, e.events, id, 8)
	}
	r := e.runner(t, Options{BatchSize: 5})
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, e.tailer, e.read)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Drifts) != 0 || rep.Accounts != 3 {
		t.Fatalf("clean tables: %d accounts, drifts %v", rep.Accounts, rep.Drifts)
	}

	if _, err := e.read.Exec(ctx, `UPDATE account_balances SET balance_minor = balance_minor + 1 WHERE account_id = $1`, a); err != nil {
		t.Fatal(err)
	}
	if _, err := e.read.Exec(ctx, `DELETE FROM transaction_history WHERE account_id = $1 AND version = 4`, c); err != nil {
		t.Fatal(err)
	}
	rep, err = Verify(ctx, e.tailer, e.read)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := []uuid.UUID{a, c}
	if strings.Compare(a.String(), c.String()) > 0 {
		wantIDs = []uuid.UUID{c, a}
	}
	if got := rep.DriftedAccounts(); fmt.Sprint(got) != fmt.Sprint(wantIDs) {
		t.Fatalf("drifted accounts %v, want %v; drifts %v", got, wantIDs, rep.Drifts)
	}
	for _, d := range rep.Drifts {
		t.Log(d)
		if d.AccountID == a && !strings.Contains(d.Detail, "balance_minor") {
			t.Errorf("drift of %s does not name balance_minor: %s", a, d)
		}
	}
}

// TestVerifyBesideALaggingProjection compares each table at its own checkpoint:
// a projection that is behind is not drift.
func TestVerifyBesideALaggingProjection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	id := uuid.New()
	appendN(t, e.events, id, 4)
	r := e.runner(t, Options{})
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, e.events, id, 4)
	onlyBalances := e.runner(t, Options{Projections: []Projection{AccountBalances()}})
	if err := onlyBalances.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, e.tailer, e.read)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Drifts) != 0 || rep.Checkpoints[AccountBalancesName] == rep.Checkpoints[TransactionHistoryName] {
		t.Fatalf("drifts %v at checkpoints %v", rep.Drifts, rep.Checkpoints)
	}
	// The others catch up on their own, from their own checkpoints.
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	assertTablesMatchReplay(t, e)
}

// TestProjectionRebuiltAlone empties one table and resets its checkpoint: it is
// refolded from its own state while the others stay ahead.
func TestProjectionRebuiltAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	for range 3 {
		appendN(t, e.events, uuid.New(), 9)
	}
	r := e.runner(t, Options{BatchSize: 4})
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.read.Exec(ctx, `DELETE FROM daily_summaries; UPDATE projection_checkpoints SET transaction_id = '0', global_position = 0 WHERE projection = 'daily_summaries'`); err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	assertTablesMatchReplay(t, e)
}

// TestStandbyTakesOver runs two Runners: one is active, the other waits, and
// takes over within a few seconds of the first stopping.
func TestStandbyTakesOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	opts := Options{StandbyRetry: 100 * time.Millisecond, MaxPoll: 5 * time.Millisecond}
	first, second := e.runner(t, opts), e.runner(t, opts)
	ctx1, stop1 := context.WithCancel(ctx)
	ctx2, stop2 := context.WithCancel(ctx)
	done1, done2 := make(chan error, 1), make(chan error, 1)
	go func() { done1 <- first.Run(ctx1) }()
	waitFor(t, "first active", first.Active)
	go func() { done2 <- second.Run(ctx2) }()

	id := uuid.New()
	appendN(t, e.events, id, 5)
	waitCaughtUp(t, e, first)
	if second.Active() || gaugeValue(t, second.m.active) != 0 || gaugeValue(t, first.m.active) != 1 {
		t.Fatalf("active: first %v second %v", first.Active(), second.Active())
	}

	stop1()
	if err := <-done1; err != nil {
		t.Fatalf("first Run: %v", err)
	}
	start := time.Now()
	waitFor(t, "second active", second.Active)
	t.Logf("standby took over %v after the active one stopped", time.Since(start))
	if gaugeValue(t, first.m.active) != 0 {
		t.Fatal("first still reports active")
	}
	appendN(t, e.events, id, 5)
	waitCaughtUp(t, e, second)
	stop2()
	if err := <-done2; err != nil {
		t.Fatalf("second Run: %v", err)
	}
	assertTablesMatchReplay(t, e)
	if n := gaugeValue(t, first.m.eventsApplied.WithLabelValues(AccountBalancesName)) + gaugeValue(t, second.m.eventsApplied.WithLabelValues(AccountBalancesName)); n != 10 {
		t.Fatalf("%v events applied in all, want 10", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, 5*time.Second, func() (bool, string) { return cond(), "waiting for " + what })
}

// TestRunFinishesBatchOnShutdown cancels Run while batches are being applied:
// it returns nil and what it committed is consistent.
func TestRunFinishesBatchOnShutdown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	for range 10 {
		appendN(t, e.events, uuid.New(), 20)
	}
	r := e.runner(t, Options{BatchSize: 3})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	r.afterApply = func([]eventlog.RecordedEvent) { stop() } // cancel in the middle of the run
	go func() { done <- r.Run(runCtx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	cps := r.Checkpoints()
	if cps[AccountBalancesName].IsZero() {
		t.Fatal("no batch was committed")
	}
	got, dbCps, err := ReadTables(ctx, e.read)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dbCps) != fmt.Sprint(cps) {
		t.Fatalf("stored checkpoints %v, runner's %v", dbCps, cps)
	}
	want, _, err := Replay(ctx, e.tailer, cps[AccountBalancesName])
	if err != nil {
		t.Fatal(err)
	}
	if ds := Compare(want, got); len(ds) != 0 {
		t.Fatalf("after shutdown: %v", ds)
	}
}
