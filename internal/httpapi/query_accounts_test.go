package httpapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/evbank/bank/internal/httpapi"
)

var accountKeys = []string{"balance", "closed_at", "currency", "id", "opened_at", "owner_id", "status", "updated_at", "version"}

func TestQueryGetAccount(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	usd := a.openAccount("alice", "", "100")
	a.deposit(usd, "25.5", "salary")
	kwd := a.openAccount("bob", "KWD", "1.25")
	jpy := a.openAccount("carol", "JPY", "")
	a.command(jpy, "close", map[string]any{"reason": "done"})
	a.project()

	tests := []struct {
		id, owner, currency, balance, status string
		version                              float64
	}{
		{usd, "alice", "USD", "125.50", "active", 3},
		{kwd, "bob", "KWD", "1.250", "active", 2},
		{jpy, "carol", "JPY", "0", "closed", 2},
	}
	for _, tt := range tests {
		resp := a.get("/accounts/"+tt.id, nil)
		m := resp.JSON(t)
		if d := cmp.Diff(accountKeys, jsonKeys(m)); d != "" {
			t.Errorf("%s: fields (-want +got):\n%s", tt.id, d)
		}
		want := map[string]any{"id": tt.id, "owner_id": tt.owner, "currency": tt.currency, "balance": tt.balance, "status": tt.status, "version": tt.version}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", tt.id, k, m[k], v)
			}
		}
		for _, k := range []string{"opened_at", "updated_at"} {
			if !rfc3339UTC(m[k]) {
				t.Errorf("%s: %s = %#v, want an RFC 3339 UTC timestamp", tt.id, k, m[k])
			}
		}
		if tt.status == "active" && m["closed_at"] != nil {
			t.Errorf("%s: closed_at = %#v while open, want null", tt.id, m["closed_at"])
		}
		if tt.status == "closed" && !rfc3339UTC(m["closed_at"]) {
			t.Errorf("%s: closed_at = %#v once closed, want a timestamp", tt.id, m["closed_at"])
		}
		if got, want := resp.Header.Get("ETag"), `"`+strconv.Itoa(int(tt.version))+`"`; got != want {
			t.Errorf("%s: ETag %q, want %q", tt.id, got, want)
		}
	}

	// The projection is what GET /accounts/{id} reads: not yet projected is not found.
	fresh := a.openAccount("dave", "", "")
	wantProblem(t, a.do(http.MethodGet, "/accounts/"+fresh, nil), http.StatusNotFound, "account_not_found", "")
	wantProblem(t, a.do(http.MethodGet, "/accounts/"+uuid.NewString(), nil), http.StatusNotFound, "account_not_found", "")
	wantProblem(t, a.do(http.MethodGet, "/accounts/not-a-uuid", nil), http.StatusBadRequest, "validation_failed", "id")
}

func TestQueryGetAccountAsOf(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	// Separate requests, so that every event has its own recorded_at (events
	// of one append may share a microsecond).
	id := a.openAccount("alice", "", "")
	a.deposit(id, "100", "")
	a.deposit(id, "50", "")
	a.withdraw(id, "30", "rent")
	a.withdraw(id, "120", "")
	a.command(id, "close", nil)
	// The answer comes from the event store: no projection needed.

	var trail httpapi.AuditPage
	a.get("/accounts/"+id+"/events", &trail)
	if len(trail.Items) != 6 {
		t.Fatalf("audit trail has %d events, want 6", len(trail.Items))
	}
	at := func(version int) time.Time { return trail.Items[version-1].RecordedAt }
	asOf := func(t time.Time) string {
		return "/accounts/" + id + "?as_of=" + url.QueryEscape(t.Format(time.RFC3339Nano))
	}
	for v := 2; v <= 6; v++ {
		if !at(v - 1).Before(at(v)) {
			t.Fatalf("events %d and %d share recorded_at %v", v-1, v, at(v))
		}
	}

	// Before the opening: the account did not exist yet.
	wantProblem(t, a.do(http.MethodGet, asOf(at(1).Add(-time.Microsecond)), nil), http.StatusNotFound, "account_not_found", "")
	wantProblem(t, a.do(http.MethodGet, "/accounts/"+uuid.NewString()+"?as_of=2030-01-01T00:00:00Z", nil), http.StatusNotFound, "account_not_found", "")

	check := func(path, balance, status string, version int, updated time.Time, closed bool) {
		t.Helper()
		m := a.get(path, nil).JSON(t)
		if d := cmp.Diff(accountKeys, jsonKeys(m)); d != "" {
			t.Errorf("%s: fields (-want +got):\n%s", path, d)
		}
		if m["balance"] != balance || m["status"] != status || m["version"] != float64(version) || m["id"] != id || m["owner_id"] != "alice" {
			t.Errorf("%s: got %v, want balance %s, status %s, version %d", path, m, balance, status, version)
		}
		if got, _ := time.Parse(time.RFC3339Nano, m["updated_at"].(string)); !got.Equal(updated) || !rfc3339UTC(m["updated_at"]) {
			t.Errorf("%s: updated_at %v, want %v", path, m["updated_at"], updated)
		}
		if got, _ := time.Parse(time.RFC3339Nano, m["opened_at"].(string)); got.After(at(1)) || !rfc3339UTC(m["opened_at"]) {
			t.Errorf("%s: opened_at %v, after the opening was recorded (%v)", path, m["opened_at"], at(1))
		}
		if (m["closed_at"] != nil) != closed {
			t.Errorf("%s: closed_at %v, want closed=%v", path, m["closed_at"], closed)
		}
	}
	// Between two events: the state after the earlier one; as_of includes
	// events recorded at that very instant.
	check(asOf(at(1)), "0.00", "active", 1, at(1), false)
	check(asOf(at(2)), "100.00", "active", 2, at(2), false)
	check(asOf(at(3)), "150.00", "active", 3, at(3), false)
	check(asOf(at(4).Add(-time.Microsecond)), "150.00", "active", 3, at(3), false)
	check(asOf(at(4)), "120.00", "active", 4, at(4), false)
	// After the last: the current state; another offset names the same instant.
	check(asOf(at(6)), "0.00", "closed", 6, at(6), true)
	plus2 := at(6).Add(time.Hour).In(time.FixedZone("", 2*3600))
	check(asOf(plus2), "0.00", "closed", 6, at(6), true)

	// Once projected, the replay equals the projection.
	a.project()
	current := a.get("/accounts/"+id, nil).JSON(t)
	replayed := a.get(asOf(time.Now().Add(time.Hour)), nil).JSON(t)
	if d := cmp.Diff(current, replayed); d != "" {
		t.Errorf("as_of now vs the projection (-projection +replay):\n%s", d)
	}
}

func TestQueryListAccounts(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	type acct struct{ id, owner, status string }
	var all []acct
	for i := range 13 {
		owner := []string{"owner-a", "owner-b", "ÿ owner c"}[i%3]
		id := a.openAccount(owner, "EUR", "")
		status := "active"
		if i%4 == 1 {
			a.command(id, "close", nil)
			status = "closed"
		}
		all = append(all, acct{id, owner, status})
	}
	a.project()
	slices.SortFunc(all, func(x, y acct) int { return strings.Compare(x.id, y.id) })

	filters := []struct{ owner, status string }{
		{"", ""}, {"owner-a", ""}, {"ÿ owner c", ""}, {"", "closed"}, {"", "active"}, {"owner-b", "closed"}, {"nobody", ""},
	}
	for _, f := range filters {
		var want []string
		for _, x := range all {
			if (f.owner == "" || x.owner == f.owner) && (f.status == "" || x.status == f.status) {
				want = append(want, x.id)
			}
		}
		for _, limit := range []int{0, 1, 3, 200} { // 0: the default
			q := url.Values{}
			if f.owner != "" {
				q.Set("owner_id", f.owner)
			}
			if f.status != "" {
				q.Set("status", f.status)
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			var got []string
			for pages := 0; ; pages++ {
				if pages > len(all)+1 {
					t.Fatalf("%v: pagination does not end", q)
				}
				path := "/accounts"
				if len(q) > 0 {
					path += "?" + q.Encode()
				}
				resp := a.get(path, nil)
				m := resp.JSON(t)
				if d := cmp.Diff([]string{"items", "next_cursor"}, jsonKeys(m)); d != "" {
					t.Fatalf("%s: fields (-want +got):\n%s", path, d)
				}
				var page httpapi.AccountPage
				a.get(path, &page)
				if limit > 0 && len(page.Items) > limit {
					t.Errorf("%s: %d items, limit %d", path, len(page.Items), limit)
				}
				for _, it := range page.Items {
					got = append(got, it.ID.String())
					if (f.owner != "" && it.OwnerID != f.owner) || (f.status != "" && it.Status != f.status) {
						t.Errorf("%s: %+v does not match the filter", path, it)
					}
				}
				if page.NextCursor == nil {
					if m["next_cursor"] != nil {
						t.Errorf("%s: next_cursor %v on the last page", path, m["next_cursor"])
					}
					break
				}
				q.Set("cursor", *page.NextCursor)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("owner %q status %q limit %d: ids across pages (-want +got):\n%s", f.owner, f.status, limit, d)
			}
		}
	}

	// A full last page still ends with a null cursor, once the next read finds nothing.
	m := a.get("/accounts?limit=200", nil).JSON(t)
	if items := m["items"].([]any); len(items) != len(all) || m["next_cursor"] != nil {
		t.Errorf("one page of all: %d items, next_cursor %v", len(items), m["next_cursor"])
	}
	first := m["items"].([]any)[0].(map[string]any)
	if d := cmp.Diff(accountKeys, jsonKeys(first)); d != "" {
		t.Errorf("list item fields (-want +got):\n%s", d)
	}
}

func TestQueryListAccountsEmpty(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	resp := a.get("/accounts", nil)
	if string(resp.Body) != `{"items":[],"next_cursor":null}` {
		t.Errorf("no accounts: %s", resp.Body)
	}
}

func TestQueryAccountsBadParams(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	id := a.openAccount("alice", "", "1")
	a.project()
	tests := []struct{ path, field string }{
		{"/accounts?limit=0", "limit"},
		{"/accounts?limit=201", "limit"},
		{"/accounts?limit=ten", "limit"},
		{"/accounts?limit=1&limit=2", "limit"},
		{"/accounts?cursor=%%%", "cursor"},
		{"/accounts?owner_id=a%zz", "owner_id"},
		{"/accounts?owner_id=a;status=closed", "owner_id"},
		{"/accounts/" + id + "?as_of=%G0", "as_of"},
		{"/accounts/" + id + "/transactions?limit=5%", "limit"},
		{"/accounts/" + id + "/daily-summaries?%ZZ=1", "query"},
		{"/accounts?cursor=" + encodeTestCursor("v:3"), "cursor"},
		{"/accounts?cursor=" + encodeTestCursor("a:not-a-uuid"), "cursor"},
		{"/accounts?status=open", "status"},
		{"/accounts?status=ACTIVE", "status"},
		{"/accounts?status=active&status=closed", "status"},
		{"/accounts?owner_id=", "owner_id"},
		{"/accounts?owner_id=%20%20", "owner_id"},
		{"/accounts?owner_id=" + strings.Repeat("x", 129), "owner_id"},
		{"/accounts?owner_id=a%07b", "owner_id"},
		{"/accounts?owner_id=a&owner_id=b", "owner_id"},
		{"/accounts/" + id + "?as_of=yesterday", "as_of"},
		{"/accounts/" + id + "?as_of=2024-01-01", "as_of"},
		{"/accounts/" + id + "?as_of=2024-01-01T00:00:00", "as_of"},
		{"/accounts/" + id + "?as_of=2024-13-01T00:00:00Z", "as_of"},
		{"/accounts/" + id + "?as_of=2024-01-01T00:00:00+02:00", "as_of"}, // '+' not encoded: a space
		{"/accounts/" + id + "?min_version=0", "min_version"},
		{"/accounts/" + id + "?min_version=-1", "min_version"},
		{"/accounts/" + id + "?min_version=1.5", "min_version"},
		{"/accounts/" + id + "?min_version=x", "min_version"},
		{"/accounts/" + id + "?min_version=99999999999", "min_version"},
		{"/accounts/" + id + "?min_version=", "min_version"},
		{"/accounts/NOT-A-UUID", "id"},
	}
	for _, tt := range tests {
		wantProblem(t, a.do(http.MethodGet, tt.path, nil), http.StatusBadRequest, "validation_failed", tt.field)
	}
	// 128 characters is fine, as is an owner nobody has.
	a.get("/accounts?owner_id="+strings.Repeat("é", 128), nil)
}
