package query_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/query"
)

func TestGetAccount(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()
	open, closedAt := ts("2024-03-01T10:00:00.123456Z"), ts("2024-03-05T08:30:00Z")
	usd, jpy, kwd := uuid.New(), uuid.New(), uuid.New()
	seedBalance(t, pool, balanceRow{id: usd, owner: "alice", currency: "USD", balance: 12550, status: "active", version: 3, opened: open, updated: open.Add(time.Hour)})
	seedBalance(t, pool, balanceRow{id: jpy, owner: "bob", currency: "JPY", balance: 0, status: "closed", version: 4, opened: open, updated: closedAt, closed: &closedAt})
	seedBalance(t, pool, balanceRow{id: kwd, owner: "carol", currency: "KWD", balance: 1250, status: "active", version: 2, opened: open, updated: open})

	tests := []struct {
		id   uuid.UUID
		want query.Account
	}{
		{usd, query.Account{ID: usd, OwnerID: "alice", Currency: "USD", Balance: "125.50", Status: "active", Version: 3, OpenedAt: open, UpdatedAt: open.Add(time.Hour)}},
		{jpy, query.Account{ID: jpy, OwnerID: "bob", Currency: "JPY", Balance: "0", Status: "closed", Version: 4, OpenedAt: open, UpdatedAt: closedAt, ClosedAt: &closedAt}},
		{kwd, query.Account{ID: kwd, OwnerID: "carol", Currency: "KWD", Balance: "1.250", Status: "active", Version: 2, OpenedAt: open, UpdatedAt: open}},
	}
	for _, tt := range tests {
		got, err := q.GetAccount(ctx, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("GetAccount(%s) (-want +got):\n%s", tt.id, d)
		}
		if got.OpenedAt.Location() != time.UTC {
			t.Errorf("opened_at is in %v, want UTC", got.OpenedAt.Location())
		}
	}
	if _, err := q.GetAccount(ctx, uuid.New()); !errors.Is(err, domain.ErrAccountNotFound) {
		t.Errorf("unknown account: err = %v, want ErrAccountNotFound", err)
	}
}

func TestListAccounts(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()
	at := ts("2024-01-01T00:00:00Z")
	type acct struct {
		id            uuid.UUID
		owner, status string
	}
	var all []acct
	for i := range 23 {
		a := acct{id: uuid.New(), owner: []string{"alice", "bob", "carol"}[i%3], status: "active"}
		row := balanceRow{id: a.id, owner: a.owner, currency: "USD", status: "active", version: 1, opened: at, updated: at}
		if i%4 == 0 {
			a.status, row.status, row.version, row.closed = "closed", "closed", 2, &at
		}
		seedBalance(t, pool, row)
		all = append(all, a)
	}
	slices.SortFunc(all, func(a, b acct) int { return strings.Compare(a.id.String(), b.id.String()) })

	for _, f := range []struct{ owner, status string }{{"", ""}, {"alice", ""}, {"", "closed"}, {"bob", "active"}, {"nobody", ""}} {
		t.Run(fmt.Sprintf("owner=%q,status=%q", f.owner, f.status), func(t *testing.T) {
			var want []uuid.UUID
			for _, a := range all {
				if (f.owner == "" || a.owner == f.owner) && (f.status == "" || a.status == f.status) {
					want = append(want, a.id)
				}
			}
			for _, limit := range []int{1, 4, 200} {
				var got []uuid.UUID
				filter := query.AccountFilter{OwnerID: f.owner, Status: domain.Status(f.status), Limit: limit}
				for pages := 0; ; pages++ {
					if pages > len(all)+1 {
						t.Fatal("pagination does not end")
					}
					page, err := q.ListAccounts(ctx, filter)
					if err != nil {
						t.Fatal(err)
					}
					if len(page.Items) > limit {
						t.Fatalf("page of %d items, limit %d", len(page.Items), limit)
					}
					for _, a := range page.Items {
						got = append(got, a.ID)
						if (f.owner != "" && a.OwnerID != f.owner) || (f.status != "" && a.Status != f.status) {
							t.Errorf("account %+v does not match the filter", a)
						}
					}
					if !page.More {
						break
					}
					last := page.Items[len(page.Items)-1].ID
					filter.After = &last
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("limit %d: ids across pages (-want +got):\n%s", limit, d)
				}
			}
		})
	}
}

func TestListAccountsEmpty(t *testing.T) {
	t.Parallel()
	q, _ := newReadDB(t)
	page, err := q.ListAccounts(context.Background(), query.AccountFilter{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if page.Items == nil || len(page.Items) != 0 || page.More {
		t.Errorf("empty table: page = %#v, want empty non-nil items and no more", page)
	}
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()
	at := ts("2024-02-01T12:00:00Z")
	id, quiet := uuid.New(), uuid.New()
	seedBalance(t, pool, balanceRow{id: id, owner: "o", currency: "KWD", balance: 0, status: "active", version: 14, opened: at, updated: at})
	seedBalance(t, pool, balanceRow{id: quiet, owner: "o", currency: "USD", status: "active", version: 1, opened: at, updated: at})
	var want []query.Transaction // newest first
	balance := int64(0)
	for v := 2; v <= 14; v++ {
		typ, amount, desc := "deposit", int64(v*1000+5), fmt.Sprintf("d%d", v)
		if v%3 == 0 {
			typ, amount, desc = "withdrawal", 500, ""
		}
		if typ == "deposit" {
			balance += amount
		} else {
			balance -= amount
		}
		occurred := at.Add(time.Duration(v) * time.Minute)
		eid := seedTransaction(t, pool, id, typ, amount, "KWD", desc, balance, v, occurred)
		want = append([]query.Transaction{{
			EventID: eid, Type: typ, Amount: domain.FormatAmount(amount, domain.MustCurrency("KWD")), Description: desc,
			BalanceAfter: domain.FormatAmount(balance, domain.MustCurrency("KWD")), Version: v, OccurredAt: occurred,
		}}, want...)
	}
	if want[0].Amount != "14.005" || want[0].BalanceAfter == "" {
		t.Fatalf("test setup: %+v", want[0])
	}

	for _, limit := range []int{1, 5, 13, 50} {
		var got []query.Transaction
		before := 0
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
			page, err := q.Transactions(ctx, id, "", limit, before)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) > limit {
				t.Fatalf("page of %d items, limit %d", len(page.Items), limit)
			}
			got = append(got, page.Items...)
			if !page.More {
				break
			}
			before = page.Items[len(page.Items)-1].Version
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("limit %d: transactions across pages (-want +got):\n%s", limit, d)
		}
	}

	page, err := q.Transactions(ctx, quiet, "", 50, 0)
	if err != nil || page.Items == nil || len(page.Items) != 0 || page.More {
		t.Errorf("account without movements: page = %#v, err = %v; want empty items", page, err)
	}
	page, err = q.Transactions(ctx, id, "", 50, 1)
	if err != nil || len(page.Items) != 0 {
		t.Errorf("before version 1: page = %#v, err = %v; want empty", page, err)
	}
	if _, err := q.Transactions(ctx, uuid.New(), "", 50, 0); !errors.Is(err, domain.ErrAccountNotFound) {
		t.Errorf("unknown account: err = %v, want ErrAccountNotFound", err)
	}
}

func TestDailySummaries(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()
	at := ts("2024-02-01T12:00:00Z")
	id, other := uuid.New(), uuid.New()
	seedBalance(t, pool, balanceRow{id: id, owner: "o", currency: "USD", balance: 700, status: "active", version: 9, opened: at, updated: at})
	seedBalance(t, pool, balanceRow{id: other, owner: "o", currency: "USD", balance: 700, status: "active", version: 9, opened: at, updated: at})
	seedDay(t, pool, id, "2024-02-01", "USD", 2, 1500, 1, 500, 1000, 4)
	seedDay(t, pool, id, "2024-02-03", "USD", 0, 0, 1, 300, 700, 5)
	seedDay(t, pool, id, "2024-02-10", "USD", 1, 1, 0, 0, 701, 6)
	seedDay(t, pool, other, "2024-02-02", "USD", 1, 1, 0, 0, 1, 2)

	day := func(s string) time.Time { d, _ := time.Parse(query.DateLayout, s); return d }
	// feb3 also had transfers: 2 in (4.00), 1 out (2.50).
	if _, err := pool.Exec(ctx, `UPDATE daily_summaries SET transfers_in_count = 2, transfers_in_total_minor = 400,
    transfers_out_count = 1, transfers_out_total_minor = 250 WHERE account_id = $1 AND day = '2024-02-03'`, id); err != nil {
		t.Fatal(err)
	}
	feb1 := query.DailySummary{Date: "2024-02-01", DepositsCount: 2, DepositsTotal: "15.00", WithdrawalsCount: 1, WithdrawalsTotal: "5.00",
		TransfersInTotal: "0.00", TransfersOutTotal: "0.00", ClosingBalance: "10.00"}
	feb3 := query.DailySummary{Date: "2024-02-03", DepositsCount: 0, DepositsTotal: "0.00", WithdrawalsCount: 1, WithdrawalsTotal: "3.00",
		TransfersInCount: 2, TransfersInTotal: "4.00", TransfersOutCount: 1, TransfersOutTotal: "2.50", ClosingBalance: "7.00"}
	feb10 := query.DailySummary{Date: "2024-02-10", DepositsCount: 1, DepositsTotal: "0.01", WithdrawalsCount: 0, WithdrawalsTotal: "0.00",
		TransfersInTotal: "0.00", TransfersOutTotal: "0.00", ClosingBalance: "7.01"}
	tests := []struct {
		from, to string
		want     []query.DailySummary
	}{
		{"2024-01-01", "2024-12-31", []query.DailySummary{feb1, feb3, feb10}},
		{"2024-02-01", "2024-02-03", []query.DailySummary{feb1, feb3}}, // both ends included
		{"2024-02-02", "2024-02-09", []query.DailySummary{feb3}},
		{"2024-02-10", "2024-02-10", []query.DailySummary{feb10}},
		{"2024-02-04", "2024-02-09", []query.DailySummary{}},
	}
	for _, tt := range tests {
		got, err := q.DailySummaries(ctx, id, "", day(tt.from), day(tt.to))
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s..%s (-want +got):\n%s", tt.from, tt.to, d)
		}
	}
	// A date in another zone is taken as the calendar date it names.
	east := time.FixedZone("UTC+14", 14*3600)
	got, err := q.DailySummaries(ctx, id, "", time.Date(2024, 2, 10, 0, 0, 0, 0, east), time.Date(2024, 2, 10, 0, 0, 0, 0, east))
	if err != nil || len(got) != 1 || got[0].Date != "2024-02-10" {
		t.Errorf("dates in UTC+14: got %+v, %v", got, err)
	}
	if _, err := q.DailySummaries(ctx, uuid.New(), "", day("2024-01-01"), day("2024-12-31")); !errors.Is(err, domain.ErrAccountNotFound) {
		t.Errorf("unknown account: err = %v, want ErrAccountNotFound", err)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()

	got, err := q.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(query.Summary{Balances: []query.CurrencyTotal{}}, got); d != "" || got.Balances == nil {
		t.Errorf("empty read model (-want +got):\n%s", d)
	}

	at := ts("2024-01-01T00:00:00Z")
	seed := func(cur string, balance int64, status string) {
		row := balanceRow{id: uuid.New(), owner: "o", currency: cur, balance: balance, status: status, version: 2, opened: at, updated: at}
		if status == "closed" {
			row.closed = &at
		}
		seedBalance(t, pool, row)
	}
	// Two balances near the bigint limit: their sum does not fit an int64.
	seed("USD", 9_000_000_000_000_000_000, "active")
	seed("USD", 9_000_000_000_000_000_001, "active")
	seed("USD", 0, "closed")
	seed("KWD", 1250, "active")
	seed("KWD", 5, "active")
	seed("JPY", 0, "closed")
	seed("EUR", 7, "active")
	// Pending transfers are in flight, whatever their size; finished ones are not.
	seedTransfer(t, pool, transferRow{from: uuid.New(), to: uuid.New(), amount: 9_000_000_000_000_000_000, currency: "USD", status: "pending", created: at})
	seedTransfer(t, pool, transferRow{from: uuid.New(), to: uuid.New(), amount: 9_000_000_000_000_000_000, currency: "USD", status: "pending", created: at})
	seedTransfer(t, pool, transferRow{from: uuid.New(), to: uuid.New(), amount: 5, currency: "USD", status: "completed", created: at, completed: &at})
	seedTransfer(t, pool, transferRow{from: uuid.New(), to: uuid.New(), amount: 6, currency: "KWD", status: "returned", created: at, completed: &at})
	seedTransfer(t, pool, transferRow{from: uuid.New(), to: uuid.New(), amount: 7, currency: "KWD", status: "pending", created: at})
	// A currency whose accounts account_balances has not caught up with yet.
	seedTransfer(t, pool, transferRow{from: uuid.New(), to: uuid.New(), amount: 8, currency: "CHF", status: "pending", created: at})

	got, err = q.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := query.Summary{
		Accounts: query.AccountCounts{Total: 7, Active: 5, Closed: 2},
		Balances: []query.CurrencyTotal{
			{Currency: "CHF", Total: "0.00", InFlight: "0.08"},
			{Currency: "EUR", Total: "0.07", InFlight: "0.00"},
			{Currency: "JPY", Total: "0", InFlight: "0"},
			{Currency: "KWD", Total: "1.255", InFlight: "0.007"},
			{Currency: "USD", Total: "180000000000000000.01", InFlight: "180000000000000000.00"},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}
}

// TestDailySummaryTotalsPastInt64: a day's totals are numeric and read exactly,
// however far past 2^63 legal movements take them.
func TestDailySummaryTotalsPastInt64(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()
	at := ts("2024-02-01T12:00:00Z")
	id := uuid.New()
	seedBalance(t, pool, balanceRow{id: id, owner: "o", currency: "KWD", balance: 0, status: "active", version: 20_001, opened: at, updated: at})
	_, err := pool.Exec(ctx, `
INSERT INTO daily_summaries (account_id, day, currency, deposits_count, deposits_total_minor, withdrawals_count,
    withdrawals_total_minor, closing_balance_minor, last_version)
VALUES ($1, '2024-02-01', 'KWD', 10000, '10000000000000000000', 10000, '10000000000000000001', 0, 20001)`, id)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `UPDATE daily_summaries SET transfers_in_count = 10000, transfers_in_total_minor = '10000000000000000002',
    transfers_out_count = 10000, transfers_out_total_minor = '10000000000000000003' WHERE account_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.DailySummaries(ctx, id, "", at, at)
	if err != nil {
		t.Fatal(err)
	}
	want := []query.DailySummary{{Date: "2024-02-01", DepositsCount: 10000, DepositsTotal: "10000000000000000.000",
		WithdrawalsCount: 10000, WithdrawalsTotal: "10000000000000000.001",
		TransfersInCount: 10000, TransfersInTotal: "10000000000000000.002",
		TransfersOutCount: 10000, TransfersOutTotal: "10000000000000000.003", ClosingBalance: "0.000"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestTransactionsOfTransfers: transfer steps come with their transfer and
// counterparty; deposits and withdrawals with neither (null in JSON).
func TestTransactionsOfTransfers(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()
	at := ts("2024-02-01T12:00:00Z")
	id, payee, transfer := uuid.New(), uuid.New(), uuid.New()
	seedBalance(t, pool, balanceRow{id: id, owner: "o", currency: "USD", balance: 1000, status: "active", version: 4, opened: at, updated: at})
	dep := seedTransaction(t, pool, id, "deposit", 1000, "USD", "pay", 1000, 2, at)
	_, err := pool.Exec(ctx, `
INSERT INTO transaction_history (event_id, account_id, type, amount_minor, currency, description, balance_after_minor, version, occurred_at,
    transfer_id, counterparty_account_id)
VALUES ($1, $2, 'transfer_out', 250, 'USD', 'rent', 750, 3, $3, $4, $5),
       ($6, $2, 'transfer_returned', 250, 'USD', 'destination closed', 1000, 4, $3, $4, $5)`,
		uuid.New(), id, at, transfer, payee, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	page, err := q.Transactions(ctx, id, "", 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 3 {
		t.Fatalf("got %d items, want 3: %+v", len(page.Items), page.Items)
	}
	ret, out, d := page.Items[0], page.Items[1], page.Items[2]
	if ret.Type != "transfer_returned" || ret.Description != "destination closed" || ret.BalanceAfter != "10.00" ||
		ret.TransferID == nil || *ret.TransferID != transfer || ret.CounterpartyAccountID == nil || *ret.CounterpartyAccountID != payee {
		t.Errorf("returned step: %+v", ret)
	}
	if out.Type != "transfer_out" || out.Amount != "2.50" || out.Description != "rent" || out.TransferID == nil || *out.TransferID != transfer {
		t.Errorf("out step: %+v", out)
	}
	if d.EventID != dep || d.TransferID != nil || d.CounterpartyAccountID != nil {
		t.Errorf("deposit: %+v, want no transfer_id or counterparty", d)
	}
}

// TestAccountTransfers: both directions, newest first, pages that neither
// skip nor repeat a transfer even when several share a created_at, the
// owner rule, and an account with none.
func TestAccountTransfers(t *testing.T) {
	t.Parallel()
	q, pool := newReadDB(t)
	ctx := context.Background()
	at := ts("2024-02-01T12:00:00.123456Z")
	id, other, quiet := uuid.New(), uuid.New(), uuid.New()
	for _, a := range []uuid.UUID{id, other, quiet} {
		seedBalance(t, pool, balanceRow{id: a, owner: "o", currency: "KWD", status: "active", version: 1, opened: at, updated: at})
	}
	kwd := domain.MustCurrency("KWD")
	var want []query.Transfer
	for i := range 13 {
		r := transferRow{id: uuid.New(), from: id, to: other, amount: int64(1000 + i), currency: "KWD", description: fmt.Sprintf("t%d", i),
			status: "pending", created: at.Add(time.Duration(i/3) * time.Second)} // three share each instant
		if i%2 == 1 {
			r.from, r.to = other, id
		}
		if i%4 == 2 {
			done, reason := r.created.Add(time.Second), "destination closed"
			r.status, r.reason, r.completed = "returned", &reason, &done
		}
		seedTransfer(t, pool, r)
		v := query.Transfer{ID: r.id, FromAccountID: r.from, ToAccountID: r.to, Amount: domain.FormatAmount(r.amount, kwd), Currency: "KWD",
			Description: r.description, Status: r.status, Reason: r.reason, CreatedAt: r.created, CompletedAt: r.completed}
		want = append(want, v)
	}
	// Another pair's transfer is not the account's.
	seedTransfer(t, pool, transferRow{from: other, to: quiet, amount: 1, currency: "KWD", status: "pending", created: at})
	slices.SortFunc(want, func(a, b query.Transfer) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID.String(), a.ID.String())
	})

	for _, limit := range []int{1, 2, 5, 13, 50} {
		var (
			got   []query.Transfer
			after *query.TransferCursor
		)
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
			page, err := q.AccountTransfers(ctx, id, "", limit, after)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) > limit {
				t.Fatalf("page of %d items, limit %d", len(page.Items), limit)
			}
			got = append(got, page.Items...)
			if !page.More {
				break
			}
			last := page.Items[len(page.Items)-1]
			after = &query.TransferCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("limit %d: transfers across pages (-want +got):\n%s", limit, d)
		}
	}

	page, err := q.AccountTransfers(ctx, quiet, "o", 50, nil)
	if err != nil || page.Items == nil || len(page.Items) != 1 || page.More {
		t.Errorf("account with one transfer in: page = %#v, err = %v", page, err)
	}
	if _, err := q.AccountTransfers(ctx, id, "mallory", 50, nil); !errors.Is(err, domain.ErrAccountNotFound) {
		t.Errorf("another owner's account: err = %v, want ErrAccountNotFound", err)
	}
	if _, err := q.AccountTransfers(ctx, uuid.New(), "", 50, nil); !errors.Is(err, domain.ErrAccountNotFound) {
		t.Errorf("unknown account: err = %v, want ErrAccountNotFound", err)
	}
}
