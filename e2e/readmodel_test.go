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
)

// The read tables are checked against the event store independently of the
// projector's code: facts are folded here, in SQL and a few lines of Go.

// streamFacts is what the event store says about one account.
type streamFacts struct {
	version     int
	closed      bool
	balance     int64
	deposits    int
	withdrawals int
	depositSum  int64
	withdrawSum int64
	money       map[uuid.UUID]moneyEvent // by event id
}

type moneyEvent struct {
	version      int
	kind         string // deposit or withdrawal
	amount       int64
	balanceAfter int64
}

// eventFacts folds every stream of the event store (schema version 2 events:
// the e2e tests append through the api only).
func eventFacts(t *testing.T, events *pgxpool.Pool) map[uuid.UUID]*streamFacts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := events.Query(ctx, `SELECT stream_id, version, event_id, event_type, schema_version,
		coalesce((data->>'amount_minor')::bigint, 0)
		FROM events ORDER BY stream_id, version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]*streamFacts{}
	for rows.Next() {
		var (
			stream, eventID uuid.UUID
			version, schema int
			typ             string
			amount          int64
		)
		if err := rows.Scan(&stream, &version, &eventID, &typ, &schema, &amount); err != nil {
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
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitCaughtUp waits until every projection's checkpoint is the last event of
// the store in the reader's (transaction_id, global_position) order. Call it
// once no more appends are coming.
func (s *stack) waitCaughtUp(t *testing.T, timeout time.Duration) {
	t.Helper()
	events, read := pgtest.NewPool(t, s.eventsURL), pgtest.NewPool(t, s.readURL)
	ctx := context.Background()
	eventually(t, timeout, func() (bool, string) {
		var head string
		// Qualified: an unqualified ORDER BY transaction_id would sort the text output column.
		if err := events.QueryRow(ctx, `SELECT e.transaction_id::text || '/' || e.global_position FROM events e
			ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1`).Scan(&head); err != nil {
			return false, err.Error()
		}
		// The publisher's row is not a projection's: it follows the broker.
		rows, err := read.Query(ctx, `SELECT projection || '=' || transaction_id::text || '/' || global_position FROM projection_checkpoints
			WHERE projection <> 'publisher' ORDER BY 1`)
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
		return caught == 3 && len(cps) == 3, fmt.Sprintf("checkpoints %v, head %s", cps, head)
	})
}

// checkReadModel compares every read table with the facts of the event store,
// row by row: account_balances (version, balance, status),
// transaction_history (exactly the money events, each once, with the running
// balance) and daily_summaries (counts, totals, the last closing balance).
func (s *stack) checkReadModel(t *testing.T) map[uuid.UUID]*streamFacts {
	t.Helper()
	events, read := pgtest.NewPool(t, s.eventsURL), pgtest.NewPool(t, s.readURL)
	facts := eventFacts(t, events)
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
	rows, err = read.Query(ctx, `SELECT account_id, event_id, version, type, amount_minor, balance_after_minor FROM transaction_history`)
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
		)
		if err := rows.Scan(&id, &eventID, &version, &typ, &amount, &after); err != nil {
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
		sum(withdrawals_total_minor), (array_agg(closing_balance_minor ORDER BY day DESC))[1]
		FROM daily_summaries GROUP BY account_id`)
	if err != nil {
		t.Fatal(err)
	}
	summarised := map[uuid.UUID]bool{}
	for rows.Next() {
		var (
			id                        uuid.UUID
			dc, dt, wc, wt, lastClose int64
		)
		if err := rows.Scan(&id, &dc, &dt, &wc, &wt, &lastClose); err != nil {
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
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, f := range facts {
		if len(f.money) > 0 && !summarised[id] {
			report("daily_summaries lacks %s", id)
		}
	}

	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("the read tables differ from the event store (%d problems):\n%s", len(problems), strings.Join(problems[:min(len(problems), 30)], "\n"))
	}
	return facts
}
