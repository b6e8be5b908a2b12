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
	feb1 := query.DailySummary{Date: "2024-02-01", DepositsCount: 2, DepositsTotal: "15.00", WithdrawalsCount: 1, WithdrawalsTotal: "5.00", ClosingBalance: "10.00"}
	feb3 := query.DailySummary{Date: "2024-02-03", DepositsCount: 0, DepositsTotal: "0.00", WithdrawalsCount: 1, WithdrawalsTotal: "3.00", ClosingBalance: "7.00"}
	feb10 := query.DailySummary{Date: "2024-02-10", DepositsCount: 1, DepositsTotal: "0.01", WithdrawalsCount: 0, WithdrawalsTotal: "0.00", ClosingBalance: "7.01"}
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

	got, err = q.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := query.Summary{
		Accounts: query.AccountCounts{Total: 7, Active: 5, Closed: 2},
		Balances: []query.CurrencyTotal{
			{Currency: "EUR", Total: "0.07"},
			{Currency: "JPY", Total: "0"},
			{Currency: "KWD", Total: "1.255"},
			{Currency: "USD", Total: "180000000000000000.01"},
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
	got, err := q.DailySummaries(ctx, id, "", at, at)
	if err != nil {
		t.Fatal(err)
	}
	want := []query.DailySummary{{Date: "2024-02-01", DepositsCount: 10000, DepositsTotal: "10000000000000000.000",
		WithdrawalsCount: 10000, WithdrawalsTotal: "10000000000000000.001", ClosingBalance: "0.000"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
