package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/projection"
)

// The read tables are checked against the event store independently of the
// projector's code: facts are folded here, in SQL and a few lines of Go.

// streamFacts is what the event store says about one account.
type streamFacts struct {
	version      int
	closed       bool
	balance      int64
	deposits     int
	withdrawals  int
	depositSum   int64
	withdrawSum  int64
	transfersIn  int // received, and returned to this account
	transfersOut int
	inSum        int64
	outSum       int64
	money        map[uuid.UUID]moneyEvent // by event id
}

type moneyEvent struct {
	version      int
	kind         string // deposit, withdrawal, transfer_out, transfer_in or transfer_returned
	amount       int64
	balanceAfter int64
	transfer     *uuid.UUID // nil for deposits and withdrawals
	counterparty *uuid.UUID // the other account of a transfer step
}

// transferFacts is what the event store says about one transfer.
type transferFacts struct {
	from, to  uuid.UUID
	amount    int64
	sent      bool
	completed bool // TransferReceived exists
	returned  bool // TransferReturned exists
}

func (f *transferFacts) status() string {
	switch {
	case f.completed && f.returned:
		return "completed and returned"
	case f.completed:
		return "completed"
	case f.returned:
		return "returned"
	}
	return "pending"
}

// eventFacts folds every stream of the event store (schema version 2 events:
// the e2e tests append through the api only), and gathers each transfer's
// steps from the streams they were appended to.
func eventFacts(t *testing.T, events *pgxpool.Pool) (map[uuid.UUID]*streamFacts, map[uuid.UUID]*transferFacts) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := events.Query(ctx, `SELECT stream_id, version, event_id, event_type, schema_version,
		coalesce((data->>'amount_minor')::bigint, 0), (data->>'transfer_id')::uuid,
		coalesce(data->>'to_account_id', data->>'from_account_id')::uuid
		FROM events ORDER BY stream_id, version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]*streamFacts{}
	transfers := map[uuid.UUID]*transferFacts{}
	transfer := func(id uuid.UUID) *transferFacts {
		tf := transfers[id]
		if tf == nil {
			tf = &transferFacts{}
			transfers[id] = tf
		}
		return tf
	}
	for rows.Next() {
		var (
			stream, eventID uuid.UUID
			version, schema int
			typ             string
			amount          int64
			transferID      *uuid.UUID
			other           *uuid.UUID
		)
		if err := rows.Scan(&stream, &version, &eventID, &typ, &schema, &amount, &transferID, &other); err != nil {
			t.Fatal(err)
		}
		if schema != 2 {
			t.Fatalf("event %s of %s has schema version %d; the api writes 2", eventID, stream, schema)
		}
		f := out[stream]
		if f == nil {
			f = &streamFacts{money: map[uuid.UUID]moneyEvent{}}
			out[stream] = f
		}
		if version != f.version+1 {
			t.Fatalf("stream %s: version %d after %d", stream, version, f.version)
		}
		f.version = version
		switch typ {
		case "MoneyDeposited":
			f.balance += amount
			f.deposits++
			f.depositSum += amount
			f.money[eventID] = moneyEvent{version: version, kind: "deposit", amount: amount, balanceAfter: f.balance}
		case "MoneyWithdrawn":
			f.balance -= amount
			f.withdrawals++
			f.withdrawSum += amount
			f.money[eventID] = moneyEvent{version: version, kind: "withdrawal", amount: amount, balanceAfter: f.balance}
		case "AccountClosed":
			f.closed = true
		case "TransferSent":
			f.balance -= amount
			f.transfersOut++
			f.outSum += amount
			f.money[eventID] = moneyEvent{version: version, kind: "transfer_out", amount: amount, balanceAfter: f.balance, transfer: transferID, counterparty: other}
			tf := transfer(*transferID)
			if tf.sent {
				t.Fatalf("transfer %s sent twice", *transferID)
			}
			tf.sent, tf.from, tf.to, tf.amount = true, stream, *other, amount
		case "TransferReceived":
			f.balance += amount
			f.transfersIn++
			f.inSum += amount
			f.money[eventID] = moneyEvent{version: version, kind: "transfer_in", amount: amount, balanceAfter: f.balance, transfer: transferID, counterparty: other}
			tf := transfer(*transferID)
			if tf.completed {
				t.Fatalf("transfer %s received twice", *transferID)
			}
			tf.completed = true
		case "TransferReturned":
			f.balance += amount
			f.transfersIn++ // a returned transfer counts as a transfer in (DESIGN §2)
			f.inSum += amount
			f.money[eventID] = moneyEvent{version: version, kind: "transfer_returned", amount: amount, balanceAfter: f.balance, transfer: transferID, counterparty: other}
			tf := transfer(*transferID)
			if tf.returned {
				t.Fatalf("transfer %s returned twice", *transferID)
			}
			tf.returned = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, tf := range transfers {
		if !tf.sent {
			t.Fatalf("transfer %s has a later step but was never sent", id)
		}
	}
	return out, transfers
}

func sameUUID(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// waitCaughtUp waits until every projection's checkpoint is the last event of
// the store in the reader's (transaction_id, global_position) order. Call it
// once no more appends are coming.
func (s *stack) waitCaughtUp(t *testing.T, timeout time.Duration) {
	t.Helper()
	events, read := pgtest.NewPool(t, s.eventsURL), pgtest.NewPool(t, s.readURL)
	ctx := context.Background()
	names := projection.Names() // all four: balances, history, daily, transfers
	eventually(t, timeout, func() (bool, string) {
		var head string
		// Qualified: an unqualified ORDER BY transaction_id would sort the text output column.
		if err := events.QueryRow(ctx, `SELECT e.transaction_id::text || '/' || e.global_position FROM events e
			ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1`).Scan(&head); err != nil {
			return false, err.Error()
		}
		// Only the projections' rows: another reader of the log may keep a
		// checkpoint in the same table.
		rows, err := read.Query(ctx, `SELECT projection || '=' || transaction_id::text || '/' || global_position FROM projection_checkpoints
			WHERE projection = ANY($1) ORDER BY 1`, names)
		if err != nil {
			return false, err.Error()
		}
		defer rows.Close()
		var cps []string
		caught := 0
		for rows.Next() {
			var cp string
			if err := rows.Scan(&cp); err != nil {
				return false, err.Error()
			}
			cps = append(cps, cp)
			if strings.HasSuffix(cp, "="+head) {
				caught++
			}
		}
		if err := rows.Err(); err != nil {
			return false, err.Error()
		}
		return caught == len(names) && len(cps) == len(names), fmt.Sprintf("checkpoints %v, head %s", cps, head)
	})
}

// checkReadModel compares every read table with the facts of the event store,
// row by row: account_balances (version, balance, status),
// transaction_history (exactly the money events and transfer steps, each
// once, with the running balance, the transfer and the other account),
// daily_summaries (counts, totals, the last closing balance) and transfers
// (each transfer once, its accounts, amount, status and reason's presence).
func (s *stack) checkReadModel(t *testing.T) map[uuid.UUID]*streamFacts {
	t.Helper()
	events, read := pgtest.NewPool(t, s.eventsURL), pgtest.NewPool(t, s.readURL)
	facts, transfers := eventFacts(t, events)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// account_balances
	rows, err := read.Query(ctx, `SELECT account_id, version, balance_minor, status FROM account_balances`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]bool{}
	for rows.Next() {
		var (
			id      uuid.UUID
			version int
			balance int64
			status  string
		)
		if err := rows.Scan(&id, &version, &balance, &status); err != nil {
			t.Fatal(err)
		}
		seen[id] = true
		f, ok := facts[id]
		if !ok {
			report("account_balances has %s, which the event store does not", id)
			continue
		}
		wantStatus := "active"
		if f.closed {
			wantStatus = "closed"
		}
		if version != f.version || balance != f.balance || status != wantStatus {
			report("account_balances %s: version %d balance %d %s; the event store: version %d balance %d %s",
				id, version, balance, status, f.version, f.balance, wantStatus)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range facts {
		if !seen[id] {
			report("account_balances lacks %s", id)
		}
	}

	// transaction_history: exactly the money events.
	rows, err = read.Query(ctx, `SELECT account_id, event_id, version, type, amount_minor, balance_after_minor,
		transfer_id, counterparty_account_id FROM transaction_history`)
	if err != nil {
		t.Fatal(err)
	}
	perAccount := map[uuid.UUID]int{}
	for rows.Next() {
		var (
			id, eventID   uuid.UUID
			version       int
			typ           string
			amount, after int64
			transfer      *uuid.UUID
			counterparty  *uuid.UUID
		)
		if err := rows.Scan(&id, &eventID, &version, &typ, &amount, &after, &transfer, &counterparty); err != nil {
			t.Fatal(err)
		}
		perAccount[id]++
		f := facts[id]
		if f == nil {
			report("transaction_history has event %s of unknown account %s", eventID, id)
			continue
		}
		want, ok := f.money[eventID]
		switch {
		case !ok:
			report("transaction_history has event %s (version %d) that is no money event of %s", eventID, version, id)
		case version != want.version || typ != want.kind || amount != want.amount || after != want.balanceAfter:
			report("transaction_history %s of %s: v%d %s %d -> %d; the event store: v%d %s %d -> %d",
				eventID, id, version, typ, amount, after, want.version, want.kind, want.amount, want.balanceAfter)
		case !sameUUID(transfer, want.transfer) || !sameUUID(counterparty, want.counterparty):
			report("transaction_history %s of %s: transfer %v, counterparty %v; the event store: %v, %v",
				eventID, id, transfer, counterparty, want.transfer, want.counterparty)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, f := range facts {
		if perAccount[id] != len(f.money) {
			report("transaction_history holds %d rows of %s; the event store has %d money events", perAccount[id], id, len(f.money))
		}
	}

	// daily_summaries, summed over the days.
	rows, err = read.Query(ctx, `SELECT account_id, sum(deposits_count), sum(deposits_total_minor), sum(withdrawals_count),
		sum(withdrawals_total_minor), (array_agg(closing_balance_minor ORDER BY day DESC))[1],
		sum(transfers_in_count), sum(transfers_in_total_minor), sum(transfers_out_count), sum(transfers_out_total_minor)
		FROM daily_summaries GROUP BY account_id`)
	if err != nil {
		t.Fatal(err)
	}
	summarised := map[uuid.UUID]bool{}
	for rows.Next() {
		var (
			id                        uuid.UUID
			dc, dt, wc, wt, lastClose int64
			ic, it, oc, ot            int64
		)
		if err := rows.Scan(&id, &dc, &dt, &wc, &wt, &lastClose, &ic, &it, &oc, &ot); err != nil {
			t.Fatal(err)
		}
		summarised[id] = true
		f := facts[id]
		if f == nil {
			report("daily_summaries has unknown account %s", id)
			continue
		}
		if dc != int64(f.deposits) || dt != f.depositSum || wc != int64(f.withdrawals) || wt != f.withdrawSum || lastClose != f.balance {
			report("daily_summaries of %s: %d deposits (%d), %d withdrawals (%d), closing %d; the event store: %d (%d), %d (%d), %d",
				id, dc, dt, wc, wt, lastClose, f.deposits, f.depositSum, f.withdrawals, f.withdrawSum, f.balance)
		}
		if ic != int64(f.transfersIn) || it != f.inSum || oc != int64(f.transfersOut) || ot != f.outSum {
			report("daily_summaries of %s: %d transfers in (%d), %d out (%d); the event store: %d (%d), %d (%d)",
				id, ic, it, oc, ot, f.transfersIn, f.inSum, f.transfersOut, f.outSum)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, f := range facts {
		if len(f.money) > 0 && !summarised[id] {
			report("daily_summaries lacks %s", id)
		}
	}

	// transfers: one row per transfer sent, as its steps make it.
	rows, err = read.Query(ctx, `SELECT transfer_id, from_account_id, to_account_id, amount_minor, status,
		reason IS NOT NULL, completed_at IS NOT NULL FROM transfers`)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[uuid.UUID]bool{}
	for rows.Next() {
		var (
			id, from, to          uuid.UUID
			amount                int64
			status                string
			hasReason, isFinished bool
		)
		if err := rows.Scan(&id, &from, &to, &amount, &status, &hasReason, &isFinished); err != nil {
			t.Fatal(err)
		}
		listed[id] = true
		tf := transfers[id]
		if tf == nil {
			report("transfers has %s, which the event store does not", id)
			continue
		}
		if from != tf.from || to != tf.to || amount != tf.amount || status != tf.status() ||
			hasReason != tf.returned || isFinished != (tf.completed || tf.returned) {
			report("transfers %s: %s to %s, %d, %s (reason %t, completed_at %t); the event store: %s to %s, %d, %s",
				id, from, to, amount, status, hasReason, isFinished, tf.from, tf.to, tf.amount, tf.status())
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range transfers {
		if !listed[id] {
			report("transfers lacks %s", id)
		}
	}

	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("the read tables differ from the event store (%d problems):\n%s", len(problems), strings.Join(problems[:min(len(problems), 30)], "\n"))
	}
	return facts
}
