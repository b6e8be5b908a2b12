package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/evbank/bank/internal/httpapi"
)

func TestQueryTransactions(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	id := a.openAccount("alice", "KWD", "10") // v1 opened, v2 deposit "initial deposit"
	type move struct {
		typ, amount, description, balanceAfter string
		version                                int
	}
	want := []move{{"deposit", "10.000", "initial deposit", "10.000", 2}}
	balance := 10_000
	for i := range 11 {
		amount := 1000 + i
		typ, desc := "deposit", "pay "+strconv.Itoa(i)
		var v int
		if i%3 == 2 {
			typ, desc = "withdrawal", ""
			balance -= amount
			v = a.withdraw(id, kwd(amount), desc)
		} else {
			balance += amount
			v = a.deposit(id, kwd(amount), desc)
		}
		want = append(want, move{typ, kwd(amount), desc, kwd(balance), v})
	}
	quiet := a.openAccount("bob", "", "")
	a.project()

	// Newest first.
	for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
		want[i], want[j] = want[j], want[i]
	}
	for _, limit := range []int{1, 5, 12, 50} {
		var got []move
		seen := map[string]bool{}
		path := "/accounts/" + id + "/transactions?limit=" + strconv.Itoa(limit)
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatal("pagination does not end")
			}
			m := a.get(path, nil).JSON(t)
			if d := cmp.Diff([]string{"items", "next_cursor"}, jsonKeys(m)); d != "" {
				t.Fatalf("page fields (-want +got):\n%s", d)
			}
			items := m["items"].([]any)
			if len(items) > limit {
				t.Fatalf("%d items, limit %d", len(items), limit)
			}
			for _, it := range items {
				tx := it.(map[string]any)
				if d := cmp.Diff([]string{"amount", "balance_after", "counterparty_account_id", "description", "event_id", "occurred_at", "transfer_id", "type", "version"}, jsonKeys(tx)); d != "" {
					t.Fatalf("item fields (-want +got):\n%s", d)
				}
				if tx["transfer_id"] != nil || tx["counterparty_account_id"] != nil {
					t.Errorf("a %s with transfer_id %v, counterparty_account_id %v: want null", tx["type"], tx["transfer_id"], tx["counterparty_account_id"])
				}
				eid := tx["event_id"].(string)
				if _, err := uuid.Parse(eid); err != nil || seen[eid] {
					t.Errorf("event_id %q invalid or seen twice", eid)
				}
				seen[eid] = true
				if !rfc3339UTC(tx["occurred_at"]) {
					t.Errorf("occurred_at %v", tx["occurred_at"])
				}
				got = append(got, move{tx["type"].(string), tx["amount"].(string), tx["description"].(string), tx["balance_after"].(string), int(tx["version"].(float64))})
			}
			if m["next_cursor"] == nil {
				break
			}
			path = "/accounts/" + id + "/transactions?limit=" + strconv.Itoa(limit) + "&cursor=" + url.QueryEscape(m["next_cursor"].(string))
		}
		if d := cmp.Diff(want, got, cmp.AllowUnexported(move{})); d != "" {
			t.Errorf("limit %d: transactions across pages (-want +got):\n%s", limit, d)
		}
	}

	// The default page holds them all; an account without movements has none.
	var page httpapi.TransactionPage
	a.get("/accounts/"+id+"/transactions", &page)
	if len(page.Items) != len(want) || page.NextCursor != nil {
		t.Errorf("default page: %d items, next %v", len(page.Items), page.NextCursor)
	}
	if body := a.get("/accounts/"+quiet+"/transactions", nil).Body; string(body) != `{"items":[],"next_cursor":null}` {
		t.Errorf("no movements: %s", body)
	}

	wantProblem(t, a.do(http.MethodGet, "/accounts/"+uuid.NewString()+"/transactions", nil), http.StatusNotFound, "account_not_found", "")
	bad := []struct{ query, field string }{
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"limit=-3", "limit"},
		{"cursor=***", "cursor"},
		{"cursor=" + encodeTestCursor("a:"+id), "cursor"},
		{"cursor=" + encodeTestCursor("v:0"), "cursor"},
		{"cursor=" + encodeTestCursor("v:x"), "cursor"},
		{"min_version=0", "min_version"},
		{"min_version=abc", "min_version"},
	}
	for _, tt := range bad {
		wantProblem(t, a.do(http.MethodGet, "/accounts/"+id+"/transactions?"+tt.query, nil), http.StatusBadRequest, "validation_failed", tt.field)
	}
	wantProblem(t, a.do(http.MethodGet, "/accounts/x/transactions", nil), http.StatusBadRequest, "validation_failed", "id")
}

// kwd prints minor units of KWD (three digits).
func kwd(minor int) string {
	s := strconv.Itoa(minor + 1_000_000)
	whole := strconv.Itoa(minor / 1000)
	return whole + "." + s[len(s)-3:]
}

func TestQueryDailySummaries(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	id := a.openAccount("alice", "", "100")
	a.deposit(id, "50", "")
	a.withdraw(id, "30.25", "")
	quiet := a.openAccount("bob", "", "")
	a.project()

	today := utcToday()
	todayRow := map[string]any{
		"date": today.Format("2006-01-02"), "deposits_count": float64(2), "deposits_total": "150.00",
		"withdrawals_count": float64(1), "withdrawals_total": "30.25", "closing_balance": "119.75",
		"transfers_in_count": float64(0), "transfers_in_total": "0.00", "transfers_out_count": float64(0), "transfers_out_total": "0.00",
	}
	// Older days, written as the projector writes them, to test the range.
	day := func(back int) string { return today.AddDate(0, 0, -back).Format("2006-01-02") }
	for _, back := range []int{29, 30, 45} {
		_, err := a.read.Exec(context.Background(), `
INSERT INTO daily_summaries (account_id, day, currency, deposits_count, deposits_total_minor, withdrawals_count,
    withdrawals_total_minor, closing_balance_minor, last_version)
VALUES ($1, $2::text::date, 'USD', 1, $3::bigint, 0, 0, $3::bigint, 1)`, id, day(back), back)
		if err != nil {
			t.Fatal(err)
		}
	}
	old := func(back int) map[string]any {
		amount := "0." + strconv.Itoa(back)
		return map[string]any{
			"date": day(back), "deposits_count": float64(1), "deposits_total": amount,
			"withdrawals_count": float64(0), "withdrawals_total": "0.00", "closing_balance": amount,
			"transfers_in_count": float64(0), "transfers_in_total": "0.00", "transfers_out_count": float64(0), "transfers_out_total": "0.00",
		}
	}

	tests := []struct {
		query string
		want  []map[string]any
	}{
		{"", []map[string]any{old(29), todayRow}}, // the last 30 days, today included
		{"?from=" + day(45) + "&to=" + day(0), []map[string]any{old(45), old(30), old(29), todayRow}},
		{"?from=" + day(30) + "&to=" + day(29), []map[string]any{old(30), old(29)}}, // both ends included
		{"?from=" + day(44) + "&to=" + day(31), nil},
		{"?to=" + day(1), []map[string]any{old(30), old(29)}},                       // the 30 days ending at to
		{"?from=" + day(45), []map[string]any{old(45), old(30), old(29), todayRow}}, // to defaults to today
		{"?from=" + day(0) + "&to=" + day(0), []map[string]any{todayRow}},
	}
	for _, tt := range tests {
		path := "/accounts/" + id + "/daily-summaries" + tt.query
		m := a.get(path, nil).JSON(t)
		if d := cmp.Diff([]string{"items"}, jsonKeys(m)); d != "" {
			t.Errorf("%s: fields (-want +got):\n%s", path, d)
		}
		got := []map[string]any{}
		for _, it := range m["items"].([]any) {
			got = append(got, it.(map[string]any))
		}
		if tt.want == nil {
			tt.want = []map[string]any{}
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", path, d)
		}
	}
	if body := a.get("/accounts/"+quiet+"/daily-summaries", nil).Body; string(body) != `{"items":[]}` {
		t.Errorf("no movements: %s", body)
	}

	wantProblem(t, a.do(http.MethodGet, "/accounts/"+uuid.NewString()+"/daily-summaries", nil), http.StatusNotFound, "account_not_found", "")
	tomorrow := today.AddDate(0, 0, 1).Format("2006-01-02")
	bad := []struct{ query, field string }{
		{"from=2024-1-01", "from"},
		{"from=01/02/2024", "from"},
		{"to=2024-02-30", "to"},
		{"to=2024-02-01T00:00:00Z", "to"},
		{"from=2024-02-02&to=2024-02-01", "from"},
		{"from=" + tomorrow, "from"}, // after to's default, today
		{"from=2024-01-01&from=2024-01-02", "from"},
		{"min_version=-5", "min_version"},
	}
	for _, tt := range bad {
		wantProblem(t, a.do(http.MethodGet, "/accounts/"+id+"/daily-summaries?"+tt.query, nil), http.StatusBadRequest, "validation_failed", tt.field)
	}
}

func TestQuerySummary(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	if body := a.get("/summary", nil).Body; string(body) != `{"accounts":{"total":0,"active":0,"closed":0},"balances":[]}` {
		t.Errorf("empty: %s", body)
	}
	a.openAccount("alice", "", "100")
	a.openAccount("alice", "", "0.5")
	a.openAccount("bob", "JPY", "500")
	a.openAccount("carol", "KWD", "1.25")
	closed := a.openAccount("dave", "EUR", "")
	a.command(closed, "close", nil)
	a.project()
	// Ignored parameters change nothing.
	body := a.get("/summary?limit=1", nil).Body
	want := `{"accounts":{"total":5,"active":4,"closed":1},"balances":[` +
		`{"currency":"EUR","total":"0.00","in_flight":"0.00"},{"currency":"JPY","total":"500","in_flight":"0"},` +
		`{"currency":"KWD","total":"1.250","in_flight":"0.000"},{"currency":"USD","total":"100.50","in_flight":"0.00"}]}`
	if string(body) != want {
		t.Errorf("summary:\n got %s\nwant %s", body, want)
	}
}
