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
	"github.com/evbank/bank/internal/readmodel"
)

// transferScript writes, one event per transaction as the saga does, three
// accounts and transfers between them over two UTC days: completed ones, a
// returned one, one left pending, and one whose steps are far apart, so that
// a small batch finishes in a later batch what an earlier one started.
type transferScript struct {
	t       *testing.T
	e       *env
	version map[uuid.UUID]int
	at      time.Time
}

func newTransferScript(t *testing.T, e *env, at time.Time, accounts ...uuid.UUID) *transferScript {
	s := &transferScript{t: t, e: e, version: map[uuid.UUID]int{}, at: at}
	for _, id := range accounts {
		s.add(id, domain.TypeAccountOpened, fmt.Sprintf(`{"account_id":%q,"owner_id":"o","currency":"USD","opened_at":%q}`, id, at.Format(time.RFC3339Nano)))
		s.add(id, domain.TypeMoneyDeposited, `{"amount_minor":100000,"currency":"USD","description":"seed"}`)
	}
	return s
}

func (s *transferScript) add(id uuid.UUID, typ, data string) time.Time {
	s.t.Helper()
	s.version[id]++
	s.at = s.at.Add(time.Minute)
	insertAt(s.t, s.e.events, id, s.version[id], typ, data, s.at)
	return s.at
}

func (s *transferScript) send(tr, from, to uuid.UUID, amount int64, desc string) time.Time {
	return s.add(from, domain.TypeTransferSent, fmt.Sprintf(`{"transfer_id":%q,"to_account_id":%q,"amount_minor":%d,"currency":"USD","description":%q}`, tr, to, amount, desc))
}

func (s *transferScript) receive(tr, from, to uuid.UUID, amount int64, desc string) time.Time {
	return s.add(to, domain.TypeTransferReceived, fmt.Sprintf(`{"transfer_id":%q,"from_account_id":%q,"amount_minor":%d,"currency":"USD","description":%q}`, tr, from, amount, desc))
}

func (s *transferScript) giveBack(tr, from, to uuid.UUID, amount int64, reason string) time.Time {
	return s.add(from, domain.TypeTransferReturned, fmt.Sprintf(`{"transfer_id":%q,"to_account_id":%q,"amount_minor":%d,"currency":"USD","reason":%q}`, tr, to, amount, reason))
}

// TestTransfersNamedAfterTheirTable: the api waits for the transfers
// projection's checkpoint by the table's name (httpapi's min_version).
func TestTransfersNamedAfterTheirTable(t *testing.T) {
	if Transfers().Name() != readmodel.Transfers.Name {
		t.Fatalf("projection %q keeps table %q; GET /accounts/{id}/transfers?min_version= waits for the checkpoint %q", Transfers().Name(), readmodel.Transfers.Name, readmodel.Transfers.Name)
	}
}

// TestTransfersProjected folds transfers live in batches of every size that
// splits them differently, checks the rows against what the saga's steps
// mean, and then rebuilds: the live tables, the rebuilt ones and the oracle
// all agree.
func TestTransfersProjected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	s := newTransferScript(t, e, time.Date(2024, 3, 1, 23, 40, 0, 0, time.UTC), a, b, c)

	done, back, pending, far := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	doneSent := s.send(done, a, b, 2500, "rent")
	doneAt := s.receive(done, a, b, 2500, "rent")
	s.send(back, b, c, 700, "to a closed account")
	backAt := s.giveBack(back, b, c, 700, "destination closed")
	farSent := s.send(far, c, a, 300, "slow")
	for range 10 { // crosses into the next UTC day
		tr := uuid.New()
		s.send(tr, b, c, 1, "")
		s.receive(tr, b, c, 1, "")
	}
	farAt := s.receive(far, c, a, 300, "slow")
	if readmodel.UTCDay(farAt).Equal(readmodel.UTCDay(farSent)) {
		t.Fatalf("test setup: %s and %s are one day", farSent, farAt)
	}
	s.send(pending, a, c, 4000, "in flight")

	for _, size := range []int{1, 2, 3, 1000} {
		t.Run(fmt.Sprintf("batch %d", size), func(t *testing.T) {
			if _, err := e.read.Exec(ctx, `TRUNCATE account_balances, transaction_history, daily_summaries, transfers, projection_checkpoints`); err != nil {
				t.Fatal(err)
			}
			if err := e.runner(t, Options{BatchSize: size}).CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			got := assertTablesMatchReplay(t, e)
			if len(got.Transfers) != 14 {
				t.Fatalf("%d transfers, want 14", len(got.Transfers))
			}
			reason := "destination closed"
			want := map[uuid.UUID]readmodel.Transfer{
				done:    {TransferID: done, FromAccountID: a, ToAccountID: b, AmountMinor: 2500, Currency: "USD", Description: "rent", Status: "completed", CreatedAt: doneSent, CompletedAt: &doneAt},
				back:    {TransferID: back, FromAccountID: b, ToAccountID: c, AmountMinor: 700, Currency: "USD", Description: "to a closed account", Status: "returned", Reason: &reason, CreatedAt: backAt.Add(-time.Minute), CompletedAt: &backAt},
				far:     {TransferID: far, FromAccountID: c, ToAccountID: a, AmountMinor: 300, Currency: "USD", Description: "slow", Status: "completed", CreatedAt: farSent, CompletedAt: &farAt},
				pending: {TransferID: pending, FromAccountID: a, ToAccountID: c, AmountMinor: 4000, Currency: "USD", Description: "in flight", Status: "pending", CreatedAt: s.at},
			}
			for id, w := range want {
				if ds := compareTransfers(map[uuid.UUID]readmodel.Transfer{id: w}, map[uuid.UUID]readmodel.Transfer{id: got.Transfers[id]}); len(ds) > 0 {
					t.Errorf("transfer %s: %v", id, ds)
				}
			}
			// The steps, each on the account it touched.
			steps := map[string][]readmodel.Transaction{}
			for _, h := range got.History {
				if h.TransferID != nil && (*h.TransferID == done || *h.TransferID == back) {
					steps[h.Type] = append(steps[h.Type], h)
				}
			}
			if len(steps["transfer_out"]) != 2 || len(steps["transfer_in"]) != 1 || len(steps["transfer_returned"]) != 1 {
				t.Fatalf("steps: %v", steps)
			}
			if in := steps["transfer_in"][0]; in.AccountID != b || *in.CounterpartyAccountID != a || in.Description != "rent" || in.BalanceAfterMinor != 102500 {
				t.Errorf("transfer_in: %+v", in)
			}
			if r := steps["transfer_returned"][0]; r.AccountID != b || *r.CounterpartyAccountID != c || r.Description != "destination closed" || r.BalanceAfterMinor != 102500 {
				t.Errorf("transfer_returned: %+v", r)
			}
			// b's first day: in 2500 and the 700 back (a return is a transfer in), out 700.
			d := got.Daily[readmodel.DayKey{AccountID: b, Day: readmodel.UTCDay(doneAt)}]
			if d.TransfersInCount != 2 || d.TransfersInTotalMinor.String() != "3200" || d.TransfersOutCount < 1 || d.DepositsCount != 1 {
				t.Errorf("b's day: %+v", d)
			}
			if got.Balances[a].BalanceMinor != 100000-2500+300-4000 {
				t.Errorf("a's balance: %d", got.Balances[a].BalanceMinor)
			}
		})
	}

	live := assertTablesMatchReplay(t, e)
	if _, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{ChunkSize: 7})); err != nil {
		t.Fatal(err)
	}
	rebuilt := assertTablesMatchReplay(t, e)
	if ds := Compare(live, rebuilt); len(ds) > 0 {
		t.Fatalf("the rebuild differs from the live projection: %v", ds)
	}
	// And the live projection goes on from the rebuilt table: the pending
	// transfer completes.
	s.receive(pending, a, c, 4000, "in flight")
	if err := e.runner(t, Options{}).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := assertTablesMatchReplay(t, e); got.Transfers[pending].Status != "completed" {
		t.Errorf("pending transfer after its last step: %+v", got.Transfers[pending])
	}
}

// TestTransfersRebuiltAlone rebuilds only the transfers projection, in small
// chunks: its Bulk fold replaces a tampered table with the live projection's
// rows (pending ones included) and leaves the other tables alone.
func TestTransfersRebuiltAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a, b := uuid.New(), uuid.New()
	s := newTransferScript(t, e, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), a, b)
	for i := range 20 {
		tr := uuid.New()
		s.send(tr, a, b, int64(10+i), "")
		if i%5 != 4 {
			s.receive(tr, a, b, int64(10+i), "")
		}
	}
	if err := e.runner(t, Options{BatchSize: 4}).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	live := assertTablesMatchReplay(t, e)
	if _, err := e.read.Exec(ctx, `UPDATE transfers SET status = 'completed' WHERE status = 'pending'`); err != nil {
		t.Fatal(err)
	}
	if _, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{Projections: []string{TransfersName}, ChunkSize: 5})); err != nil {
		t.Fatal(err)
	}
	if ds := Compare(live, assertTablesMatchReplay(t, e)); len(ds) > 0 {
		t.Fatalf("rebuilt transfers differ: %v", ds)
	}
	if n := count(t, e.read, `SELECT count(*) FROM transfers WHERE status = 'pending'`); n != 4 {
		t.Errorf("%d pending transfers after the rebuild, want 4", n)
	}
}

// TestTransferStepsTheSagaNeverMakes: a finishing step of a transfer that is
// not pending fails the batch, rather than write a row the events do not
// support; the tables stay as they were.
func TestTransferStepsTheSagaNeverMakes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a, b := uuid.New(), uuid.New()
	s := newTransferScript(t, e, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), a, b)
	tr := uuid.New()
	s.send(tr, a, b, 10, "")
	s.receive(tr, a, b, 10, "")
	if err := e.runner(t, Options{}).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	s.receive(tr, a, b, 10, "") // a second time
	err := e.runner(t, Options{Projections: []Projection{Transfers()}}).CatchUp(ctx)
	if err == nil || !strings.Contains(err.Error(), "transfers") {
		t.Fatalf("CatchUp = %v, want the transfers projection to refuse a second finish", err)
	}
	if n := count(t, e.read, `SELECT count(*) FROM transfers WHERE status = 'completed'`); n != 1 {
		t.Errorf("%d completed transfers", n)
	}
}

// TestVerifyCatchesTamperedTransfers: verify's oracle folds the transfers
// itself and names the transfer and its source account for each kind of
// drift: a changed row, a missing one, one the events do not hold, and a
// transfer step's columns in transaction_history and daily_summaries.
func TestVerifyCatchesTamperedTransfers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	s := newTransferScript(t, e, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), a, b, c)
	t1, t2, t3 := uuid.New(), uuid.New(), uuid.New()
	s.send(t1, a, b, 10, "one")
	s.receive(t1, a, b, 10, "one")
	s.send(t2, b, c, 20, "two")
	s.send(t3, c, a, 30, "three")
	s.giveBack(t3, c, a, 30, "closed")
	if err := e.runner(t, Options{}).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, e.tailer, e.read)
	if err != nil || len(rep.Drifts) != 0 || len(rep.Unverified) != 0 {
		t.Fatalf("clean tables: %+v, %v", rep, err)
	}

	stranger, strangerFrom := uuid.New(), uuid.New()
	for _, sql := range []string{
		`UPDATE transfers SET status = 'completed', completed_at = now() WHERE transfer_id = '` + t2.String() + `'`,
		`DELETE FROM transfers WHERE transfer_id = '` + t3.String() + `'`,
		`INSERT INTO transfers (transfer_id, from_account_id, to_account_id, amount_minor, currency, description, status, created_at)
         VALUES ('` + stranger.String() + `', '` + strangerFrom.String() + `', '` + a.String() + `', 5, 'USD', '', 'pending', now())`,
		`UPDATE transaction_history SET counterparty_account_id = NULL WHERE transfer_id = '` + t1.String() + `' AND type = 'transfer_in'`,
		`UPDATE daily_summaries SET transfers_out_total_minor = transfers_out_total_minor + 1 WHERE account_id = '` + a.String() + `'`,
	} {
		if _, err := e.read.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = Verify(ctx, e.tailer, e.read)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, d := range rep.Drifts {
		lines = append(lines, d.String())
	}
	all := strings.Join(lines, "\n")
	t.Log(all)
	for _, want := range []string{
		"account " + b.String() + ": transfers: transfer " + t2.String() + ": status is completed, the events give pending",
		"account " + c.String() + ": transfers: transfer " + t3.String() + ": row missing",
		"account " + strangerFrom.String() + ": transfers: transfer " + stranger.String() + ": row (pending) for a transfer the events do not hold",
		"account " + b.String() + ": transaction_history: event",
		"counterparty_account_id is null, the events give " + a.String(),
		"account " + a.String() + ": daily_summaries: 2024-05-01: transfers_out_total_minor is 11, the events give 10",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no drift %q", want)
		}
	}
	if len(rep.Drifts) != 5 {
		t.Errorf("%d drifts, want 5", len(rep.Drifts))
	}
}

// TestDailyTransferTotalsPastInt64: transfers of 10^15 minor units back and
// forth between two accounts on one day take both accounts' transfer totals
// past 2^63; the projection, its rebuild and verify keep them exact.
func TestDailyTransferTotalsPastInt64(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a, b := uuid.New(), uuid.New()
	const cycles = 9_300
	// One statement, so one recorded_at (one UTC day); rows are numbered in
	// the saga's order (send, receive, send back, receive back), which the
	// identity column follows.
	_, err := e.events.Exec(ctx, `
INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
SELECT stream, 'BankAccount', version, gen_random_uuid(), typ, 2, data FROM (
    SELECT 0 AS k, 0 AS step, $1::uuid AS stream, 1 AS version, 'AccountOpened' AS typ,
           jsonb_build_object('account_id', $1::uuid, 'owner_id', 'o', 'currency', 'USD', 'opened_at', '2024-01-01T00:00:00Z') AS data
    UNION ALL SELECT 0, 1, $1, 2, 'MoneyDeposited', jsonb_build_object('amount_minor', $3::bigint, 'currency', 'USD', 'description', '')
    UNION ALL SELECT 0, 2, $2, 1, 'AccountOpened',
           jsonb_build_object('account_id', $2::uuid, 'owner_id', 'o', 'currency', 'USD', 'opened_at', '2024-01-01T00:00:00Z')
    UNION ALL
    SELECT k, step,
           CASE WHEN step IN (0, 3) THEN $1 ELSE $2 END,
           CASE step WHEN 0 THEN 2*k + 1 WHEN 1 THEN 2*k WHEN 2 THEN 2*k + 1 ELSE 2*k + 2 END,
           CASE WHEN step IN (0, 2) THEN 'TransferSent' ELSE 'TransferReceived' END,
           CASE step
               WHEN 0 THEN jsonb_build_object('transfer_id', md5($4 || 'out' || k)::uuid, 'to_account_id', $2, 'amount_minor', $3::bigint, 'currency', 'USD', 'description', '')
               WHEN 1 THEN jsonb_build_object('transfer_id', md5($4 || 'out' || k)::uuid, 'from_account_id', $1, 'amount_minor', $3::bigint, 'currency', 'USD', 'description', '')
               WHEN 2 THEN jsonb_build_object('transfer_id', md5($4 || 'back' || k)::uuid, 'to_account_id', $1, 'amount_minor', $3::bigint, 'currency', 'USD', 'description', '')
               ELSE jsonb_build_object('transfer_id', md5($4 || 'back' || k)::uuid, 'from_account_id', $2, 'amount_minor', $3::bigint, 'currency', 'USD', 'description', '')
           END
    FROM generate_series(1, $5::int) AS k, generate_series(0, 3) AS step
) AS s ORDER BY k, step`, a, b, domain.MaxMinor, uuid.NewString(), cycles)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.runner(t, Options{}).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d%015d", cycles, 0) // past 2^63 = 9223372036854775808
	for _, id := range []uuid.UUID{a, b} {
		var in, out string
		if err := e.read.QueryRow(ctx, `SELECT transfers_in_total_minor::text, transfers_out_total_minor::text FROM daily_summaries WHERE account_id = $1`, id).Scan(&in, &out); err != nil {
			t.Fatal(err)
		}
		if in != want || out != want {
			t.Errorf("account %s: in %s, out %s; want %s each", id, in, out, want)
		}
	}
	live := assertTablesMatchReplay(t, e)
	if _, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{})); err != nil {
		t.Fatal(err)
	}
	if ds := Compare(live, assertTablesMatchReplay(t, e)); len(ds) > 0 {
		t.Fatalf("the rebuild differs from the live projection: %v", ds[0])
	}
	if rep, err := Verify(ctx, e.tailer, e.read); err != nil || len(rep.Drifts) > 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestTransfersRebuildResumes interrupts a rebuild after its first chunk,
// when transfers sent in it are still pending, and resumes it: the saved rows
// are read back (Restore) and the steps after them finish them.
func TestTransfersRebuildResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a, b := uuid.New(), uuid.New()
	s := newTransferScript(t, e, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), a, b)
	var ids []uuid.UUID
	for i := range 12 {
		tr := uuid.New()
		ids = append(ids, tr)
		s.send(tr, a, b, int64(10+i), "")
	}
	for i, tr := range ids {
		if i%3 == 0 {
			s.giveBack(tr, a, b, int64(10+i), "refused")
		} else {
			s.receive(tr, a, b, int64(10+i), "")
		}
	}
	if err := e.runner(t, Options{}).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	live := assertTablesMatchReplay(t, e)

	runCtx, cancel := context.WithCancel(ctx)
	_, err := Rebuild(runCtx, e.events, e.read, rebuildOpts(t, RebuildOptions{ChunkSize: 10, afterChunk: func(int64) { cancel() }}))
	cancel()
	if !errors.Is(err, ErrRebuildInterrupted) {
		t.Fatalf("interrupted rebuild: %v", err)
	}
	if n := count(t, e.read, `SELECT count(*) FROM transfers_rebuild WHERE status = 'pending'`); n == 0 {
		t.Fatal("test setup: no pending transfer saved by the interrupted rebuild")
	}
	res, err := Rebuild(ctx, e.events, e.read, rebuildOpts(t, RebuildOptions{ChunkSize: 10}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed {
		t.Fatalf("result %+v: not resumed", res)
	}
	if ds := Compare(live, assertTablesMatchReplay(t, e)); len(ds) > 0 {
		t.Fatalf("the resumed rebuild differs from the live projection: %v", ds)
	}
	assertNoRebuildLeft(t, e)
}
