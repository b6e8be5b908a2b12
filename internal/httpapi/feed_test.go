package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/httpapi"
)

// insertEvent writes one event with SQL, at a chosen recorded_at.
func (a qapi) insertEvent(stream uuid.UUID, version, schema int, typ, data string, at time.Time) {
	a.t.Helper()
	if _, err := a.pool.Exec(context.Background(), `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata, recorded_at)
VALUES ($1, 'BankAccount', $2, $3, $4, $5, $6, '{}', $7)`, stream, version, uuid.New(), typ, schema, data, at); err != nil {
		a.t.Fatal(err)
	}
}

func (a qapi) feed(query string) httpapi.FeedPage {
	a.t.Helper()
	var p httpapi.FeedPage
	a.get("/events"+query, &p)
	return p
}

func TestEventFeed(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	legacy := uuid.New()
	t0 := time.Date(2019, 3, 1, 9, 0, 0, 0, time.UTC)
	a.insertEvent(legacy, 1, 1, "AccountOpened", `{"accountId":"`+legacy.String()+`","ownerId":"old","openedAt":"2019-03-01T09:00:00Z"}`, t0)
	a.insertEvent(legacy, 2, 1, "MoneyDeposited", `{"amount":125.5,"description":"salary","timestamp":"2019-03-02T09:00:00Z"}`, t0.Add(24*time.Hour))
	alice := a.openAccount("alice", "", "100")
	a.deposit(alice, "5.00", "more")
	a.withdraw(alice, "1.00", "less")
	bob := a.openAccount("bob", "JPY", "")
	a.command(bob, "close", nil)

	// Everything, in the projector's order.
	all := a.feed("?limit=200")
	if all.NextCursor != nil {
		t.Errorf("one page: next_cursor %q, want null", *all.NextCursor)
	}
	rows, err := a.pool.Query(context.Background(), `SELECT event_id FROM events ORDER BY transaction_id, global_position`)
	if err != nil {
		t.Fatal(err)
	}
	var order []int64
	var wantIDs []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		wantIDs = append(wantIDs, id)
	}
	rows.Close()
	if len(all.Items) != len(wantIDs) || len(wantIDs) != 8 {
		t.Fatalf("feed has %d events, the store %d (want 8)", len(all.Items), len(wantIDs))
	}
	for i, e := range all.Items {
		order = append(order, e.Position)
		var md map[string]any
		if err := json.Unmarshal(e.Metadata, &md); err != nil {
			t.Errorf("item %d: metadata %s", i, e.Metadata)
		}
		if e.StreamType != "BankAccount" || e.StreamID == uuid.Nil {
			t.Errorf("item %d: stream %s %q", i, e.StreamID, e.StreamType)
		}
	}
	// The legacy events were written first, so they come first; in the
	// current shape, with their stored schema version.
	if l := all.Items[1]; l.StreamID != legacy || l.SchemaVersion != 1 || l.Type != "MoneyDeposited" ||
		string(l.Data) != `{"amount_minor":12550,"currency":"USD","description":"salary"}` {
		t.Errorf("legacy deposit: %+v %s", l, l.Data)
	}

	// Pages of 3, following next_cursor, give the same events in the same order.
	var paged []int64
	q := "?limit=3"
	for pages := 0; ; pages++ {
		p := a.feed(q)
		for _, e := range p.Items {
			paged = append(paged, e.Position)
		}
		if p.NextCursor == nil {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		q = "?limit=3&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if !slices.Equal(paged, order) {
		t.Errorf("paged %v, want %v", paged, order)
	}

	// Type filter, repeatable.
	typed := a.feed("?type=MoneyDeposited&type=AccountClosed")
	var types []string
	for _, e := range typed.Items {
		types = append(types, e.Type)
	}
	if want := []string{"MoneyDeposited", "MoneyDeposited", "MoneyDeposited", "AccountClosed"}; !slices.Equal(types, want) {
		t.Errorf("typed feed: %v, want %v", types, want)
	}

	// from/to are inclusive bounds on recorded_at: the legacy deposit alone,
	// then the live events from alice's second deposit to bob's opening.
	day := a.feed("?from=2019-03-02T09:00:00Z&to=2019-03-02T09:00:00Z")
	if len(day.Items) != 1 || day.Items[0].Position != all.Items[1].Position {
		t.Errorf("from=to=legacy deposit: %+v", day.Items)
	}
	from, to := all.Items[4].RecordedAt, all.Items[6].RecordedAt
	window := a.feed("?from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano)))
	var got []int64
	for _, e := range window.Items {
		got = append(got, e.Position)
	}
	var want []int64
	for _, e := range all.Items {
		if !e.RecordedAt.Before(from) && !e.RecordedAt.After(to) {
			want = append(want, e.Position)
		}
	}
	if !slices.Equal(got, want) || len(got) < 3 {
		t.Errorf("window %s..%s: %v, want %v", from, to, got, want)
	}

	// Bad parameters are 400s naming the parameter.
	for q, field := range map[string]string{
		"?limit=0": "limit", "?limit=201": "limit", "?type=Deposit": "type", "?from=yesterday": "from",
		"?to=2024-13-01T00:00:00Z": "to", "?from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z": "from",
		"?cursor=v2": "cursor", "?cursor=" + encodeTestCursor("v:3"): "cursor",
	} {
		wantProblem(t, a.do(http.MethodGet, "/events"+q, nil), http.StatusBadRequest, "validation_failed", field)
	}

	// Admins only.
	r := a.do(http.MethodGet, "/events", nil, a.bearer("alice", "bank:read bank:write")...)
	wantProblem(t, r, http.StatusForbidden, "forbidden", "")
}

func (a qapi) summaryAt(at string) string {
	a.t.Helper()
	return string(a.get("/summary?as_of="+url.QueryEscape(at), nil).Body)
}

func TestSummaryAsOf(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	day := func(d, h int) time.Time { return time.Date(2024, 1, d, h, 0, 0, 0, time.UTC) }
	legacy, src, dst, gone := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	// A legacy USD account: 125.50 in on the 2nd, 25.25 out on the 3rd.
	a.insertEvent(legacy, 1, 1, "AccountOpened", `{"accountId":"`+legacy.String()+`","ownerId":"old","openedAt":"2024-01-01T10:00:00Z"}`, day(1, 10))
	a.insertEvent(legacy, 2, 1, "MoneyDeposited", `{"amount":125.5,"description":"","timestamp":"2024-01-02T10:00:00Z"}`, day(2, 10))
	a.insertEvent(legacy, 3, 1, "MoneyWithdrawn", `{"amount":25.25,"description":"","timestamp":"2024-01-03T10:00:00Z"}`, day(3, 10))
	// Two EUR accounts and a transfer of 7.00 sent on the 5th, received on the 6th.
	opened := func(id uuid.UUID, cur string, at time.Time) {
		a.insertEvent(id, 1, 2, "AccountOpened", fmt.Sprintf(`{"account_id":"%s","owner_id":"o","currency":"%s","opened_at":"%s"}`, id, cur, at.Format(time.RFC3339)), at)
	}
	opened(src, "EUR", day(4, 10))
	a.insertEvent(src, 2, 2, "MoneyDeposited", `{"amount_minor":1000,"currency":"EUR","description":""}`, day(4, 11))
	opened(dst, "EUR", day(4, 12))
	tr := uuid.New()
	a.insertEvent(src, 3, 2, "TransferSent", fmt.Sprintf(`{"transfer_id":"%s","to_account_id":"%s","amount_minor":700,"currency":"EUR","description":""}`, tr, dst), day(5, 10))
	a.insertEvent(dst, 2, 2, "TransferReceived", fmt.Sprintf(`{"transfer_id":"%s","from_account_id":"%s","amount_minor":700,"currency":"EUR","description":""}`, tr, src), day(6, 10))
	// A JPY account opened and closed on the 7th.
	opened(gone, "JPY", day(7, 10))
	a.insertEvent(gone, 2, 2, "AccountClosed", `{"reason":"","closed_at":"2024-01-07T11:00:00Z"}`, day(7, 11))

	const empty = `{"accounts":{"total":0,"active":0,"closed":0},"balances":[]}`
	for at, want := range map[string]string{
		"2023-12-31T23:59:59Z":        empty, // before any account
		"2024-01-01T09:59:59.999999Z": empty,
		"2024-01-01T10:00:00Z":        `{"accounts":{"total":1,"active":1,"closed":0},"balances":[{"currency":"USD","total":"0.00","in_flight":"0.00"}]}`,
		"2024-01-02T12:00:00Z":        `{"accounts":{"total":1,"active":1,"closed":0},"balances":[{"currency":"USD","total":"125.50","in_flight":"0.00"}]}`,
		// An offset is the same instant: 2024-01-03T10:00:00Z, inclusive.
		"2024-01-03T11:00:00+01:00": `{"accounts":{"total":1,"active":1,"closed":0},"balances":[{"currency":"USD","total":"100.25","in_flight":"0.00"}]}`,
		// Between sent and received: the 7.00 has left one balance and is in flight.
		"2024-01-05T12:00:00Z": `{"accounts":{"total":3,"active":3,"closed":0},"balances":[` +
			`{"currency":"EUR","total":"3.00","in_flight":"7.00"},{"currency":"USD","total":"100.25","in_flight":"0.00"}]}`,
		"2024-01-06T10:00:00Z": `{"accounts":{"total":3,"active":3,"closed":0},"balances":[` +
			`{"currency":"EUR","total":"10.00","in_flight":"0.00"},{"currency":"USD","total":"100.25","in_flight":"0.00"}]}`,
		"2024-01-07T10:30:00Z": `{"accounts":{"total":4,"active":4,"closed":0},"balances":[` +
			`{"currency":"EUR","total":"10.00","in_flight":"0.00"},{"currency":"JPY","total":"0","in_flight":"0"},{"currency":"USD","total":"100.25","in_flight":"0.00"}]}`,
		// After the last event.
		"2030-01-01T00:00:00Z": `{"accounts":{"total":4,"active":3,"closed":1},"balances":[` +
			`{"currency":"EUR","total":"10.00","in_flight":"0.00"},{"currency":"JPY","total":"0","in_flight":"0"},{"currency":"USD","total":"100.25","in_flight":"0.00"}]}`,
	} {
		if got := a.summaryAt(at); got != want {
			t.Errorf("as_of=%s:\n got %s\nwant %s", at, got, want)
		}
	}

	// Now, it agrees with the projections' summary.
	a.openAccount("alice", "USD", "1.75")
	a.project()
	var live, asOf map[string]any
	_ = json.Unmarshal(a.get("/summary", nil).Body, &live)
	_ = json.Unmarshal([]byte(a.summaryAt(time.Now().Add(time.Minute).Format(time.RFC3339))), &asOf)
	if fmt.Sprint(live["accounts"]) != fmt.Sprint(asOf["accounts"]) {
		t.Errorf("accounts now: live %v, as_of %v", live["accounts"], asOf["accounts"])
	}
	lb, ab := live["balances"].([]any), asOf["balances"].([]any)
	if len(lb) != len(ab) {
		t.Fatalf("balances now: live %v, as_of %v", lb, ab)
	}
	for i := range lb {
		l, s := lb[i].(map[string]any), ab[i].(map[string]any)
		if l["currency"] != s["currency"] || l["total"] != s["total"] {
			t.Errorf("balances now: live %v, as_of %v", l, s)
		}
	}

	wantProblem(t, a.do(http.MethodGet, "/summary?as_of=2024-01-01", nil), http.StatusBadRequest, "validation_failed", "as_of")
	wantProblem(t, a.do(http.MethodGet, "/summary?as_of=2024-01-01T00:00:00Z", nil, a.bearer("alice", "bank:read")...), http.StatusForbidden, "forbidden", "")
}
