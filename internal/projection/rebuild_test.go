package projection

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/testwait"
)

// seedEvents stores accounts streams of perAccount events each (the shapes of
// eventFor), interleaved round by round as many clients would write them, with
// recorded_at spread over the days before now, in COPYs of up to 50,000 rows,
// each its own transaction.
func seedEvents(tb testing.TB, pool *pgxpool.Pool, accounts, perAccount, days int) []uuid.UUID {
	tb.Helper()
	ids := make([]uuid.UUID, accounts)
	for i := range ids {
		ids[i] = uuid.New()
	}
	base := time.Now().Add(-time.Duration(days) * 24 * time.Hour).Truncate(time.Microsecond)
	step := time.Duration(days) * 24 * time.Hour / time.Duration(perAccount)
	cols := []string{"stream_id", "stream_type", "version", "event_id", "event_type", "schema_version", "data", "recorded_at"}
	var rows [][]any
	flush := func() {
		if _, err := pool.CopyFrom(context.Background(), pgx.Identifier{"events"}, cols, pgx.CopyFromRows(rows)); err != nil {
			tb.Fatal(err)
		}
		rows = rows[:0]
	}
	for v := 1; v <= perAccount; v++ {
		at := base.Add(time.Duration(v-1) * step)
		for _, id := range ids {
			typ, sv, data := eventFor(id, v)
			rows = append(rows, []any{[16]byte(id), "BankAccount", int32(v), [16]byte(uuid.New()), typ, int16(sv), data, at})
			if len(rows) == 50_000 {
				flush()
			}
		}
	}
	if len(rows) > 0 {
		flush()
	}
	return ids
}

// waitReadable waits until the tailing reader can read every event stored.
func waitReadable(t *testing.T, e *env) {
	t.Helper()
	testwait.Until(t, 20*time.Second, func() (bool, string) {
		tb, err := e.tailer.Read(context.Background(), eventlog.Position{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return !tb.HeldBack, "events still held back by an old transaction"
	})
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func rebuildOpts(t *testing.T, opts RebuildOptions) RebuildOptions {
	opts.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	return opts
}

// assertNoRebuildLeft checks that a finished rebuild left no shadow table and no progress row.
func assertNoRebuildLeft(t *testing.T, e *env) {
	t.Helper()
	if n := count(t, e.read, `SELECT count(*) FROM `+RebuildTable); n != 0 {
		t.Errorf("%d progress rows left", n)
	}
	if n := count(t, e.read, `SELECT count(*) FROM pg_class WHERE relname LIKE '%\_rebuild%' AND relname NOT IN ('projection_rebuild', 'projection_rebuild_pkey')`); n != 0 {
		t.Errorf("%d shadow tables or indexes left", n)
	}
}

// assertSameIndexes checks that the rebuilt tables carry the indexes and
// constraints of the migrations, by name and definition.
func assertSameIndexes(t *testing.T, e *env, want map[string][]indexDef) {
	t.Helper()
	for table, w := range want {
		got, err := liveIndexes(context.Background(), e.read, table)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("indexes of %s after the rebuild:\n%v\nwant\n%v", table, got, w)
		}
	}
}

func indexesNow(t *testing.T, e *env) map[string][]indexDef {
	t.Helper()
	out := map[string][]indexDef{}
	for _, n := range []string{AccountBalancesName, TransactionHistoryName, DailySummariesName} {
		defs, err := liveIndexes(context.Background(), e.read, n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = defs
	}
	return out
}

// TestRebuildBesideLiveProjector rebuilds every projection while the live
// Runner runs, appenders append and readers query the live tables: the
// queries never fail, the tables end equal to a replay, and the live Runner,
// whose checkpoints the swap moved, notices, reloads and goes on applying.
func TestRebuildBesideLiveProjector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ids := seedEvents(t, e.events, 200, 15, 5)
	indexes := indexesNow(t, e)

	logs := &syncBuffer{}
	r, err := NewRunner(e.tailer, e.read, Options{BatchSize: 50, StandbyRetry: 100 * time.Millisecond, MaxPoll: 5 * time.Millisecond, Log: zerolog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRunner := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(runCtx) }()
	waitCaughtUp(t, e, r)
	// Drift the rebuild must repair: the live table is what it replaces.
	if _, err := e.read.Exec(ctx, `UPDATE account_balances SET balance_minor = -1 WHERE account_id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}

	// Appenders on old and new streams, and readers of the live tables.
	work, stopWork := context.WithCancel(ctx)
	var (
		wg                  sync.WaitGroup
		appended, queries   atomic.Int64
		queryErrs           = make(chan error, 100)
		maxQuery            atomic.Int64
		appendErrs          = make(chan error, 10)
		streams             = slices.Clone(ids)
		rebuildDone         atomic.Bool
		queriesAfterRebuild atomic.Int64
	)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for work.Err() == nil {
				id := streams[rng.IntN(len(streams))]
				if rng.IntN(10) == 0 {
					id = uuid.New()
				}
				if _, err := appendOne(work, e.events, id, 0); err != nil {
					if work.Err() == nil {
						appendErrs <- err
					}
					return
				}
				appended.Add(1)
			}
		}()
	}
	for q := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := ids[q]
			sqls := []string{
				`SELECT count(*) FROM account_balances WHERE status = 'active'`,
				`SELECT count(*) FROM transaction_history WHERE account_id = $1`,
				`SELECT count(*) FROM daily_summaries WHERE account_id = $1`,
			}
			for work.Err() == nil {
				sql := sqls[queries.Load()%3]
				var args []any
				if strings.Contains(sql, "$1") {
					args = []any{id}
				}
				start := time.Now()
				var n int
				if err := e.read.QueryRow(work, sql, args...).Scan(&n); err != nil {
					if work.Err() == nil {
						queryErrs <- fmt.Errorf("%s: %w", sql, err)
					}
					return
				}
				if d := time.Since(start).Microseconds(); d > maxQuery.Load() {
					maxQuery.Store(d)
				}
				queries.Add(1)
				if rebuildDone.Load() {
					queriesAfterRebuild.Add(1)
				}
			}
		}()
	}

	var phases []string
	res, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{
		ChunkSize: 100,
		Progress: func(p RebuildProgress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
			if p.Done > p.Total || p.Rate < 0 || p.ETA < 0 {
				t.Errorf("progress out of range: %+v", p)
			}
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	rebuildDone.Store(true)
	if n, a := queries.Load(), appended.Load(); n < 50 || a == 0 {
		t.Errorf("while the rebuild ran: %d queries answered, %d events appended", n, a)
	}
	t.Logf("rebuild: %+v; %d appended and %d queries meanwhile, slowest query %d µs; phases %v",
		res, appended.Load(), queries.Load(), maxQuery.Load(), phases)
	// Appends keep arriving, so a swap may back off and catch up again: any
	// number of (catch-up, swap) rounds is right, each in that order.
	if want := []string{PhaseLoad, PhaseWrite, PhaseIndex, PhaseCatchUp, PhaseSwap, PhaseDone}; !slices.Equal(collapseSwapRetries(phases), want) {
		t.Errorf("phases %v, want %v (with the catch-up and swap pair possibly repeated)", phases, want)
	}
	if res.Resumed || res.Events < 3000 || res.Folded != res.Events {
		t.Errorf("result %+v", res)
	}
	testwait.For(5*time.Second, func() bool { return queriesAfterRebuild.Load() >= 30 })
	stopWork()
	wg.Wait()
	close(queryErrs)
	close(appendErrs)
	for err := range appendErrs {
		t.Errorf("append: %v", err)
	}
	for err := range queryErrs {
		t.Errorf("query during the rebuild: %v", err)
	}
	if appended.Load() == 0 || queriesAfterRebuild.Load() < 30 {
		t.Fatalf("appended %d, %d queries after the swap", appended.Load(), queriesAfterRebuild.Load())
	}

	// The live Runner goes on: appends after the swap are applied too.
	for _, id := range ids[:5] {
		appendN(t, e.events, id, 3)
	}
	waitCaughtUp(t, e, r)
	stopRunner()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), ErrCheckpointMoved.Error()) {
		t.Errorf("the live Runner did not report its checkpoints moved:\n%s", logs.String())
	}
	got := assertTablesMatchReplay(t, e)
	if got.Balances[ids[0]].BalanceMinor == -1 {
		t.Error("the drifted row survived the rebuild")
	}
	rep, err := Verify(ctx, e.tailer, e.read)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Drifts) > 0 {
		t.Fatalf("verify after the rebuild: %v", rep.Drifts)
	}
	assertNoRebuildLeft(t, e)
	assertSameIndexes(t, e, indexes)
	var fillfactor []string
	if err := e.read.QueryRow(ctx, `SELECT reloptions FROM pg_class WHERE relname = 'account_balances'`).Scan(&fillfactor); err != nil || !slices.Equal(fillfactor, []string{"fillfactor=80"}) {
		t.Errorf("account_balances storage options %v (%v), want fillfactor=80", fillfactor, err)
	}
}

// TestRebuildInterruptedResumes cancels a rebuild in its load phase; the next
// one resumes from the saved state and ends equal to a replay. A crash (the
// save never happened) folds from the start again without copying a row twice.
func TestRebuildInterruptedResumes(t *testing.T) {
	t.Parallel()
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t)
			ids := seedEvents(t, e.events, 50, 40, 3)
			r := e.runner(t, Options{})
			if err := r.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			before, cpsBefore, err := ReadTables(ctx, e.read)
			if err != nil {
				t.Fatal(err)
			}

			runCtx, cancel := context.WithCancel(ctx)
			var interruptedAt int64
			_, err = Rebuild(runCtx, e.events, e.read, rebuildOpts(t, RebuildOptions{
				ChunkSize: 100,
				afterChunk: func(done int64) {
					if done >= 700 && interruptedAt == 0 {
						interruptedAt = done
						cancel()
					}
				},
			}))
			cancel()
			if !errors.Is(err, ErrRebuildInterrupted) {
				t.Fatalf("interrupted rebuild: %v", err)
			}
			row, err := readRebuildRow(ctx, e.read)
			if err != nil || row == nil {
				t.Fatalf("progress row %v, %v", row, err)
			}
			if row.done != interruptedAt || row.statePos == nil || *row.statePos != row.pos || row.phase != rebuildLoad {
				t.Fatalf("progress row after the interruption: %+v (interrupted after %d events)", row, interruptedAt)
			}
			if n := count(t, e.read, `SELECT count(*) FROM transaction_history_rebuild`); n == 0 || n >= 700 {
				t.Errorf("%d rows in transaction_history_rebuild", n)
			}
			// The live tables were not touched.
			after, cpsAfter, err := ReadTables(ctx, e.read)
			if err != nil {
				t.Fatal(err)
			}
			if ds := Compare(before, after); len(ds) > 0 || fmt.Sprint(cpsBefore) != fmt.Sprint(cpsAfter) {
				t.Fatalf("live tables changed by the interrupted rebuild: %v", ds)
			}
			if crash {
				if _, err := e.read.Exec(ctx, `UPDATE projection_rebuild SET state_transaction_id = NULL, state_global_position = NULL, state_events_done = NULL`); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range ids[:10] {
				appendN(t, e.events, id, 2)
			}
			appendN(t, e.events, uuid.New(), 4)

			res, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{ChunkSize: 100}))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("resumed: %+v", res)
			total := int64(50*40 + 10*2 + 4)
			if !res.Resumed || res.Events != total {
				t.Errorf("result %+v, want resumed with %d events", res, total)
			}
			if !crash && res.Folded != total-interruptedAt {
				t.Errorf("resume folded %d events, want %d", res.Folded, total-interruptedAt)
			}
			if crash && res.Folded != total {
				t.Errorf("resume after a crash folded %d events, want all %d", res.Folded, total)
			}
			assertTablesMatchReplay(t, e)
			assertNoRebuildLeft(t, e)
			_, cps, err := ReadTables(ctx, e.read)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{AccountBalancesName, TransactionHistoryName, DailySummariesName} {
				if cps[n] != res.Position || cps[n] != lastPosition(t, e.events) {
					t.Errorf("checkpoint of %s %s, want %s", n, cps[n], res.Position)
				}
			}
		})
	}
}

// TestRebuildOtherNamesStartsOver interrupts a rebuild of two projections; a
// rebuild of one of them cannot use its state and starts over cleanly.
func TestRebuildOtherNamesStartsOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	seedEvents(t, e.events, 20, 30, 2)
	runCtx, cancel := context.WithCancel(ctx)
	_, err := Rebuild(runCtx, e.events, e.read, rebuildOpts(t, RebuildOptions{
		Projections: []string{TransactionHistoryName, DailySummariesName},
		ChunkSize:   50,
		afterChunk:  func(done int64) { cancel() },
	}))
	cancel()
	if !errors.Is(err, ErrRebuildInterrupted) {
		t.Fatalf("interrupted rebuild: %v", err)
	}
	res, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{Projections: []string{TransactionHistoryName}, ChunkSize: 50}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed || res.Events != 600 || !slices.Equal(res.Projections, []string{TransactionHistoryName}) {
		t.Fatalf("result %+v", res)
	}
	got, _, err := ReadTables(ctx, e.read)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := Replay(ctx, e.tailer, eventlog.Position{})
	if err != nil {
		t.Fatal(err)
	}
	if ds := compareHistory(want.History, got.History); len(ds) > 0 {
		t.Fatalf("history: %v", ds[:min(5, len(ds))])
	}
	if len(got.Daily) != 0 || len(got.Balances) != 0 {
		t.Errorf("projections not named were written: %d daily rows, %d balances", len(got.Daily), len(got.Balances))
	}
	assertNoRebuildLeft(t, e)
}

// TestRebuildOneProjectionLeavesOthers rebuilds daily_summaries alone: it is
// repaired, while the other tables (drift included) and their checkpoint rows
// stay exactly as they were; the privileges on the table survive the swap.
func TestRebuildOneProjectionLeavesOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ids := seedEvents(t, e.events, 30, 20, 4)
	r := e.runner(t, Options{})
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	role := "rebuild_reader_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := e.read.Exec(ctx, `CREATE ROLE `+role+`; GRANT SELECT ON daily_summaries TO `+role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.read.Exec(context.Background(), `DROP OWNED BY `+role+`; DROP ROLE `+role)
	})
	for _, sql := range []string{
		`UPDATE account_balances SET balance_minor = 7 WHERE account_id = $1`,
		`UPDATE daily_summaries SET deposits_count = 99 WHERE account_id = $1`,
		`UPDATE transaction_history SET description = 'tampered' WHERE account_id = $1 AND version = 2`,
	} {
		if _, err := e.read.Exec(ctx, sql, ids[1]); err != nil {
			t.Fatal(err)
		}
	}
	type cpRow struct {
		name    string
		pos     eventlog.Position
		updated time.Time
	}
	cpRows := func() []cpRow {
		rows, err := e.read.Query(ctx, `SELECT projection, transaction_id, global_position, updated_at FROM projection_checkpoints ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (cpRow, error) {
			var c cpRow
			err := row.Scan(&c.name, &c.pos.TransactionID, &c.pos.GlobalPosition, &c.updated)
			return c, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before, _, err := ReadTables(ctx, e.read)
	if err != nil {
		t.Fatal(err)
	}
	cpsBefore := cpRows()
	appendN(t, e.events, ids[2], 3) // the rebuilt projection gets ahead of the others

	res, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{Projections: []string{DailySummariesName}, ChunkSize: 64}))
	if err != nil {
		t.Fatal(err)
	}
	after, _, err := ReadTables(ctx, e.read)
	if err != nil {
		t.Fatal(err)
	}
	if ds := append(compareBalances(before.Balances, after.Balances), compareHistory(before.History, after.History)...); len(ds) > 0 {
		t.Errorf("tables not named changed: %v", ds)
	}
	if after.Balances[ids[1]].BalanceMinor != 7 {
		t.Error("the drift in account_balances was touched")
	}
	cpsAfter := cpRows()
	for i, c := range cpsAfter {
		switch {
		case c.name == DailySummariesName:
			if c.pos != res.Position || !c.updated.After(cpsBefore[i].updated) {
				t.Errorf("daily_summaries checkpoint %+v, want %s and a newer updated_at", c, res.Position)
			}
		case c != cpsBefore[i]:
			t.Errorf("checkpoint row of %s changed: %+v, was %+v", c.name, c, cpsBefore[i])
		}
	}
	rep, err := Verify(ctx, e.tailer, e.read)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Drifts {
		if d.Projection == DailySummariesName {
			t.Errorf("daily_summaries drift after its rebuild: %s", d)
		}
	}
	if len(rep.Drifts) != 2 {
		t.Errorf("drifts %v, want the two tampered rows of the tables not rebuilt", rep.Drifts)
	}
	var granted bool
	if err := e.read.QueryRow(ctx, `SELECT has_table_privilege($1, 'daily_summaries', 'SELECT')`, role).Scan(&granted); err != nil || !granted {
		t.Errorf("SELECT on the rebuilt daily_summaries for %s: %v %v", role, granted, err)
	}
	assertNoRebuildLeft(t, e)
	// The others catch up from their own checkpoints.
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRebuildSwapBacksOff holds a lock on a live table past the swap's
// LockTimeout: the swap backs off and succeeds once the lock is gone, and a
// second rebuild meanwhile is refused.
func TestRebuildSwapBacksOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	seedEvents(t, e.events, 10, 10, 1)

	holder, err := e.read.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `LOCK TABLE transaction_history IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	done := make(chan error, 1)
	go func() {
		_, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{
			LockTimeout: 50 * time.Millisecond,
			Progress: func(p RebuildProgress) {
				if p.Phase == PhaseSwap {
					attempts.Add(1)
				}
			},
		}))
		done <- err
	}()
	testwait.For(10*time.Second, func() bool { return attempts.Load() >= 2 })
	_, err = Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{}))
	if !errors.Is(err, ErrRebuildRunning) {
		t.Errorf("second rebuild: %v", err)
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if attempts.Load() < 2 {
		t.Errorf("%d swap attempts", attempts.Load())
	}
	assertTablesMatchReplay(t, e)
	assertNoRebuildLeft(t, e)
}

// TestRebuildEmptyStore rebuilds nothing into empty tables.
func TestRebuildEmptyStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res, err := Rebuild(context.Background(), e.events, e.read, rebuildOpts(t, RebuildOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 0 || !res.Position.IsZero() {
		t.Errorf("result %+v", res)
	}
	assertTablesMatchReplay(t, e)
	assertNoRebuildLeft(t, e)
	if _, err := Rebuild(context.Background(), e.events, e.read, RebuildOptions{Projections: []string{"balances"}}); err == nil || !strings.Contains(err.Error(), "unknown projection") {
		t.Errorf("unknown name: %v", err)
	}
}

// TestRebuildInterruptedLaterResumes interrupts a rebuild while it builds the
// indexes (the fold state is saved, some indexes exist) and while it catches
// up (the shadow tables are complete): each resumes and ends equal to a replay.
func TestRebuildInterruptedLaterResumes(t *testing.T) {
	t.Parallel()
	for _, phase := range []string{PhaseIndex, PhaseCatchUp} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t)
			ids := seedEvents(t, e.events, 40, 10, 2)
			runCtx, cancel := context.WithCancel(ctx)
			_, err := Rebuild(runCtx, e.events, e.read, rebuildOpts(t, RebuildOptions{
				ChunkSize: 64,
				Progress: func(p RebuildProgress) {
					if p.Phase == phase {
						cancel()
					}
				},
			}))
			cancel()
			if !errors.Is(err, ErrRebuildInterrupted) || !strings.Contains(err.Error(), "in the "+phase+" phase") {
				t.Fatalf("interrupted rebuild: %v", err)
			}
			row, err := readRebuildRow(ctx, e.read)
			if err != nil || row == nil {
				t.Fatalf("progress row %v, %v", row, err)
			}
			wantPhase := map[string]string{PhaseIndex: rebuildLoad, PhaseCatchUp: rebuildReady}[phase]
			if row.phase != wantPhase || row.done != 400 {
				t.Fatalf("progress row %+v, want phase %s at 400 events", row, wantPhase)
			}
			for _, id := range ids[:7] {
				appendN(t, e.events, id, 3)
			}
			// A catch-up does not wait for events an older transaction holds
			// back (other tests' on the server): the live Runner applies them
			// later. Here they must be readable, for the counts below.
			waitReadable(t, e)
			res, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{ChunkSize: 64}))
			if err != nil {
				t.Fatal(err)
			}
			if !res.Resumed || res.Events != 421 || res.Folded != 21 {
				t.Errorf("result %+v, want a resume folding the 21 new events", res)
			}
			assertTablesMatchReplay(t, e)
			assertNoRebuildLeft(t, e)
		})
	}
}

// TestRebuildWaitsForHeldBackEvents starts a rebuild while an older open
// transaction holds every committed event back: the load waits for it, and
// folds the whole store (not leaving it to the catch-up).
func TestRebuildWaitsForHeldBackEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	holder, err := e.events.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	id := uuid.New()
	typ, sv, data := eventFor(id, 1)
	if _, err := holder.Exec(ctx, insertSQL, id, 1, uuid.New(), typ, sv, data); err != nil {
		t.Fatal(err)
	}
	seedEvents(t, e.events, 20, 20, 2)

	var loaded int64
	done := make(chan error, 1)
	go func() {
		_, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{
			ChunkSize: 50,
			Progress: func(p RebuildProgress) {
				if p.Phase == PhaseLoad {
					loaded = p.Done
				}
			},
		}))
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the rebuild did not wait for the held-back events: %v", err)
	default:
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if loaded < 400 {
		t.Errorf("the load folded %d events, want the 400 committed before it started", loaded)
	}
	waitReadable(t, e)
	assertTablesMatchReplay(t, e)
}

// collapseSwapRetries turns repeated (catch-up, swap) rounds into one.
func collapseSwapRetries(phases []string) []string {
	out := make([]string, 0, len(phases))
	for _, p := range phases {
		n := len(out)
		if n >= 2 && out[n-2] == PhaseCatchUp && out[n-1] == PhaseSwap && p == PhaseCatchUp {
			out = out[:n-2]
		}
		out = append(out, p)
	}
	return out
}

// TestRebuildRefusesAGapWhateverItRebuilds: a rebuild of daily_summaries alone
// still refuses a stream whose versions skip one, as the live projector does.
func TestRebuildRefusesAGapWhateverItRebuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := uuid.New()
	appendN(t, e.events, id, 3)
	typ, _, data := eventFor(id, 5)
	insertAt(t, e.events, id, 5, typ, data, time.Now())
	_, err := Rebuild(context.Background(), e.events, e.read, rebuildOpts(t, RebuildOptions{Projections: []string{DailySummariesName}}))
	var ce *ContiguityError
	if !errors.As(err, &ce) || ce.StreamID != id || ce.Have != 3 || ce.Got != 5 {
		t.Fatalf("Rebuild = %v, want a ContiguityError for stream %s, 5 after 3", err, id)
	}
}
