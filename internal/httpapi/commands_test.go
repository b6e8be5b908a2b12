package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/httpapi"
	"github.com/evbank/bank/internal/store"
)

// The command tests run the real router on a database of their own and check
// what the contract (DESIGN §2) promises, one test per promise.

// mustOpen opens an account and returns its response body.
func mustOpen(t *testing.T, a *testAPI, body map[string]any, header ...string) map[string]any {
	t.Helper()
	r := a.do("POST", "/accounts", body, header...)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("open %v: %d %s", body, r.StatusCode, r.Body)
	}
	return r.JSON(t)
}

// mustCommand posts a command that must succeed and returns the body.
func mustCommand(t *testing.T, a *testAPI, id, action string, body any, header ...string) map[string]any {
	t.Helper()
	r := a.do("POST", "/accounts/"+id+"/"+action, body, header...)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", action, id, r.StatusCode, r.Body)
	}
	return r.JSON(t)
}

// expectProblem checks a problem response's status, Content-Type and code, and
// that errors names field when field is not empty.
func expectProblem(t testing.TB, r response, status int, code, field string) {
	t.Helper()
	if r.StatusCode != status {
		t.Errorf("%s %s: status %d, want %d %s: %.300s", r.Request.Method, r.Request.URL.RequestURI(), r.StatusCode, status, code, r.Body)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", r.Request.URL.RequestURI(), ct)
	}
	var p struct {
		Status int                 `json:"status"`
		Code   string              `json:"code"`
		Errors []domain.FieldError `json:"errors"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Errorf("problem body: %v\n%s", err, r.Body)
		return
	}
	if p.Code != code || p.Status != status {
		t.Errorf("%s: problem %d %q, want %d %q: %s", r.Request.URL.RequestURI(), p.Status, p.Code, status, code, r.Body)
	}
	if field != "" && !slices.ContainsFunc(p.Errors, func(f domain.FieldError) bool { return f.Field == field }) {
		t.Errorf("%s: errors %+v do not name %q", r.Request.URL.RequestURI(), p.Errors, field)
	}
}

// auditEvent is one item of GET /accounts/{id}/events.
type auditEvent struct {
	Position      int64          `json:"position"`
	Version       int            `json:"version"`
	Type          string         `json:"type"`
	SchemaVersion int            `json:"schema_version"`
	Data          map[string]any `json:"data"`
	Metadata      map[string]any `json:"metadata"`
	RecordedAt    time.Time      `json:"recorded_at"`
}

// auditTrail reads an account's whole audit trail page by page and checks
// that versions run 1, 2, 3... and that each data matches its v2 shape in
// openapi.yaml.
func auditTrail(t *testing.T, a *testAPI, id string) []auditEvent {
	t.Helper()
	s, err := spec()
	if err != nil {
		t.Fatal(err)
	}
	var all []auditEvent
	cursor := ""
	for page := 0; ; page++ {
		path := "/accounts/" + id + "/events?limit=200"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := a.do("GET", path, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.StatusCode, r.Body)
		}
		var p struct {
			Items      []auditEvent `json:"items"`
			NextCursor *string      `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Items...)
		if p.NextCursor == nil {
			break
		}
		if page > 100 || len(p.Items) == 0 {
			t.Fatalf("audit trail does not end: page %d has %d items and a cursor", page, len(p.Items))
		}
		cursor = *p.NextCursor
	}
	for i, e := range all {
		if e.Version != i+1 {
			t.Fatalf("audit trail item %d has version %d; want %d (no gaps, version order)", i, e.Version, i+1)
		}
		if i > 0 && e.Position <= all[i-1].Position {
			t.Errorf("audit positions not increasing at version %d", e.Version)
		}
		shape := s.doc.Components.Schemas[e.Type+"Data"]
		if shape == nil {
			t.Errorf("version %d: no schema for event type %q", e.Version, e.Type)
			continue
		}
		if err := shape.Value.VisitJSON(e.Data); err != nil {
			t.Errorf("version %d %s data %v does not match %sData: %v", e.Version, e.Type, e.Data, e.Type, err)
		}
	}
	return all
}

// loadAccount folds the account straight from the event store.
func loadAccount(t *testing.T, a *testAPI, id string) *domain.Account {
	t.Helper()
	acc, err := a.events.Load(context.Background(), uuid.MustParse(id))
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// TestCommandErrorTable sends one request for each row of the contract's error
// table that a command or the audit trail can produce, and checks the status,
// the code, problem+json, the echoed X-Request-ID, and that nothing was
// appended or stored under an idempotency key.
func TestCommandErrorTable(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	usd := mustOpen(t, a, map[string]any{"owner_id": "alice", "initial_deposit": "100.00"})["id"].(string) // version 2
	closed := mustOpen(t, a, map[string]any{"owner_id": "bob"})["id"].(string)
	mustCommand(t, a, closed, "close", nil)
	jpy := mustOpen(t, a, map[string]any{"owner_id": "carol", "currency": "JPY", "initial_deposit": "500"})["id"].(string)
	full := mustOpen(t, a, map[string]any{"owner_id": "dave", "initial_deposit": "10000000000000.00"})["id"].(string) // 10^15 minor units
	unknown := uuid.NewString()

	long := func(n int) string { return strings.Repeat("x", n) }
	huge := `{"owner_id":"` + strings.Repeat("a", 1<<20) + `"}`
	cursor := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	dep := "/accounts/" + usd + "/deposit"
	wd := "/accounts/" + usd + "/withdraw"
	cl := "/accounts/" + usd + "/close"
	ev := "/accounts/" + usd + "/events"

	type row struct {
		name   string
		method string
		path   string
		body   any
		header []string
		status int
		code   string
		field  string
		allow  string // a method Allow must list
	}
	rows := []row{
		// 400 malformed_request
		{name: "not JSON", method: "POST", path: "/accounts", body: `owner_id=alice`, status: 400, code: "malformed_request"},
		{name: "broken JSON", method: "POST", path: "/accounts", body: `{"owner_id":"alice"`, status: 400, code: "malformed_request"},
		{name: "trailing object", method: "POST", path: "/accounts", body: `{"owner_id":"alice"} {}`, status: 400, code: "malformed_request"},
		{name: "trailing garbage", method: "POST", path: "/accounts", body: `{"owner_id":"alice"}x`, status: 400, code: "malformed_request"},
		{name: "array", method: "POST", path: "/accounts", body: `[]`, status: 400, code: "malformed_request"},
		{name: "string body", method: "POST", path: dep, body: `"1.00"`, status: 400, code: "malformed_request"},
		{name: "null body", method: "POST", path: dep, body: `null`, status: 400, code: "malformed_request"},
		{name: "text/plain", method: "POST", path: "/accounts", body: `{"owner_id":"alice"}`, header: []string{"Content-Type", "text/plain"}, status: 400, code: "malformed_request"},
		{name: "no Content-Type", method: "POST", path: dep, body: `{"amount":"1.00"}`, header: []string{"Content-Type", "<delete>"}, status: 400, code: "malformed_request"},
		{name: "form Content-Type", method: "POST", path: dep, body: `{"amount":"1.00"}`, header: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 400, code: "malformed_request"},
		{name: "unknown field open", method: "POST", path: "/accounts", body: `{"owner_id":"alice","nickname":"al"}`, status: 400, code: "malformed_request"},
		{name: "unknown field deposit", method: "POST", path: dep, body: `{"amount":"1.00","currency":"USD"}`, status: 400, code: "malformed_request"},
		{name: "unknown field close", method: "POST", path: cl, body: `{"why":"done"}`, status: 400, code: "malformed_request"},
		{name: "empty deposit body", method: "POST", path: dep, body: ``, status: 400, code: "malformed_request"},

		// 400 validation_failed: body fields
		{name: "missing amount", method: "POST", path: dep, body: `{}`, status: 400, code: "validation_failed", field: "amount"},
		{name: "null amount", method: "POST", path: wd, body: `{"amount":null}`, status: 400, code: "validation_failed", field: "amount"},
		{name: "amount as number", method: "POST", path: dep, body: `{"amount":1.5}`, status: 400, code: "validation_failed", field: "amount"},
		{name: "amount as object", method: "POST", path: dep, body: `{"amount":{"value":"1.00"}}`, status: 400, code: "validation_failed", field: "amount"},
		{name: "description as number", method: "POST", path: dep, body: `{"amount":"1.00","description":5}`, status: 400, code: "validation_failed", field: "description"},
		{name: "description 501", method: "POST", path: dep, body: map[string]any{"amount": "1.00", "description": long(501)}, status: 400, code: "validation_failed", field: "description"},
		{name: "description 501 withdraw", method: "POST", path: wd, body: map[string]any{"amount": "1.00", "description": long(501)}, status: 400, code: "validation_failed", field: "description"},
		{name: "description control", method: "POST", path: dep, body: map[string]any{"amount": "1.00", "description": "a\tb"}, status: 400, code: "validation_failed", field: "description"},
		{name: "reason 501", method: "POST", path: cl, body: map[string]any{"reason": long(501)}, status: 400, code: "validation_failed", field: "reason"},
		{name: "JPY fraction", method: "POST", path: "/accounts/" + jpy + "/deposit", body: map[string]any{"amount": "1.0"}, status: 400, code: "validation_failed", field: "amount"},
		{name: "owner missing", method: "POST", path: "/accounts", body: `{}`, status: 400, code: "validation_failed", field: "owner_id"},
		{name: "owner empty", method: "POST", path: "/accounts", body: map[string]any{"owner_id": ""}, status: 400, code: "validation_failed", field: "owner_id"},
		{name: "owner blank", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "  \t "}, status: 400, code: "validation_failed", field: "owner_id"},
		{name: "owner 129", method: "POST", path: "/accounts", body: map[string]any{"owner_id": long(129)}, status: 400, code: "validation_failed", field: "owner_id"},
		{name: "owner 129 runes", method: "POST", path: "/accounts", body: map[string]any{"owner_id": strings.Repeat("é", 129)}, status: 400, code: "validation_failed", field: "owner_id"},
		{name: "owner control", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "al\x07ice"}, status: 400, code: "validation_failed", field: "owner_id"},
		{name: "owner newline", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "alice\n"}, status: 400, code: "validation_failed", field: "owner_id"},
		{name: "owner C1 control", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "al\u0085ice"}, status: 400, code: "validation_failed", field: "owner_id"},
		{name: "owner number", method: "POST", path: "/accounts", body: `{"owner_id":42}`, status: 400, code: "validation_failed", field: "owner_id"},
		{name: "currency lower", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "currency": "usd"}, status: 400, code: "validation_failed", field: "currency"},
		{name: "currency XAU", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "currency": "XAU"}, status: 400, code: "validation_failed", field: "currency"},
		{name: "currency XXX", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "currency": "XXX"}, status: 400, code: "validation_failed", field: "currency"},
		{name: "currency unknown", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "currency": "ABC"}, status: 400, code: "validation_failed", field: "currency"},
		{name: "currency number", method: "POST", path: "/accounts", body: `{"owner_id":"x","currency":840}`, status: 400, code: "validation_failed", field: "currency"},
		{name: "initial JPY fraction", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "currency": "JPY", "initial_deposit": "1.0"}, status: 400, code: "validation_failed", field: "initial_deposit"},
		{name: "initial negative", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "initial_deposit": "-5"}, status: 400, code: "validation_failed", field: "initial_deposit"},
		{name: "initial over limit", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "initial_deposit": "10000000000000.01"}, status: 400, code: "validation_failed", field: "initial_deposit"},
		{name: "initial number", method: "POST", path: "/accounts", body: `{"owner_id":"x","initial_deposit":100}`, status: 400, code: "validation_failed", field: "initial_deposit"},
		{name: "body id not UUID", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "id": "account-1"}, status: 400, code: "validation_failed", field: "id"},
		{name: "body id braces", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "id": "{" + uuid.NewString() + "}"}, status: 400, code: "validation_failed", field: "id"},
		{name: "body id nil UUID", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x", "id": uuid.Nil.String()}, status: 400, code: "validation_failed", field: "id"},
		{name: "body id number", method: "POST", path: "/accounts", body: `{"owner_id":"x","id":7}`, status: 400, code: "validation_failed", field: "id"},

		// 400 validation_failed: path, headers, query
		{name: "path id not UUID", method: "POST", path: "/accounts/not-a-uuid/deposit", body: map[string]any{"amount": "1.00"}, status: 400, code: "validation_failed", field: "id"},
		{name: "path id no dashes", method: "POST", path: "/accounts/" + strings.ReplaceAll(usd, "-", "") + "/withdraw", body: map[string]any{"amount": "1.00"}, status: 400, code: "validation_failed", field: "id"},
		{name: "path id close", method: "POST", path: "/accounts/123/close", status: 400, code: "validation_failed", field: "id"},
		{name: "path id audit", method: "GET", path: "/accounts/xyz/events", status: 400, code: "validation_failed", field: "id"},
		{name: "key empty", method: "POST", path: dep, body: map[string]any{"amount": "1.00"}, header: []string{"Idempotency-Key", ""}, status: 400, code: "validation_failed", field: "Idempotency-Key"},
		{name: "key 256", method: "POST", path: dep, body: map[string]any{"amount": "1.00"}, header: []string{"Idempotency-Key", long(256)}, status: 400, code: "validation_failed", field: "Idempotency-Key"},
		{name: "key non-ASCII", method: "POST", path: dep, body: map[string]any{"amount": "1.00"}, header: []string{"Idempotency-Key", "clé-1"}, status: 400, code: "validation_failed", field: "Idempotency-Key"},
		{name: "key tab", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "x"}, header: []string{"Idempotency-Key", "a\tb"}, status: 400, code: "validation_failed", field: "Idempotency-Key"},
		{name: "If-Match unquoted", method: "POST", path: dep, body: map[string]any{"amount": "1.00"}, header: []string{"If-Match", "5"}, status: 400, code: "validation_failed", field: "If-Match"},
		{name: "If-Match unbalanced", method: "POST", path: wd, body: map[string]any{"amount": "1.00"}, header: []string{"If-Match", `"2`}, status: 400, code: "validation_failed", field: "If-Match"},
		{name: "If-Match weak unquoted", method: "POST", path: cl, header: []string{"If-Match", "W/2"}, status: 400, code: "validation_failed", field: "If-Match"},
		{name: "audit limit 0", method: "GET", path: ev + "?limit=0", status: 400, code: "validation_failed", field: "limit"},
		{name: "audit limit 201", method: "GET", path: ev + "?limit=201", status: 400, code: "validation_failed", field: "limit"},
		{name: "audit limit abc", method: "GET", path: ev + "?limit=abc", status: 400, code: "validation_failed", field: "limit"},
		{name: "audit limit -1", method: "GET", path: ev + "?limit=-1", status: 400, code: "validation_failed", field: "limit"},
		{name: "audit limit twice", method: "GET", path: ev + "?limit=5&limit=6", status: 400, code: "validation_failed", field: "limit"},
		{name: "audit cursor not base64", method: "GET", path: ev + "?cursor=%21%21%21", status: 400, code: "validation_failed", field: "cursor"},
		{name: "audit cursor foreign", method: "GET", path: ev + "?cursor=" + cursor("x:1"), status: 400, code: "validation_failed", field: "cursor"},
		{name: "audit cursor bad number", method: "GET", path: ev + "?cursor=" + cursor("v:abc"), status: 400, code: "validation_failed", field: "cursor"},
		{name: "audit cursor negative", method: "GET", path: ev + "?cursor=" + cursor("v:-3"), status: 400, code: "validation_failed", field: "cursor"},

		// 413 body_too_large
		{name: "open over 1 MiB", method: "POST", path: "/accounts", body: huge, status: 413, code: "body_too_large"},
		{name: "deposit over 1 MiB", method: "POST", path: dep, body: `{"amount":"1.00","description":"` + strings.Repeat("a", 1<<20) + `"}`, status: 413, code: "body_too_large"},

		// 404 account_not_found
		{name: "deposit unknown", method: "POST", path: "/accounts/" + unknown + "/deposit", body: map[string]any{"amount": "1.00"}, status: 404, code: "account_not_found"},
		{name: "withdraw unknown", method: "POST", path: "/accounts/" + unknown + "/withdraw", body: map[string]any{"amount": "1.00"}, status: 404, code: "account_not_found"},
		{name: "close unknown", method: "POST", path: "/accounts/" + unknown + "/close", status: 404, code: "account_not_found"},
		{name: "If-Match unknown", method: "POST", path: "/accounts/" + unknown + "/deposit", body: map[string]any{"amount": "1.00"}, header: []string{"If-Match", `"1"`}, status: 404, code: "account_not_found"},
		{name: "If-Match * unknown", method: "POST", path: "/accounts/" + unknown + "/close", header: []string{"If-Match", `*`}, status: 404, code: "account_not_found"},
		{name: "audit unknown", method: "GET", path: "/accounts/" + unknown + "/events", status: 404, code: "account_not_found"},
		{name: "audit unknown with cursor", method: "GET", path: "/accounts/" + unknown + "/events?cursor=" + cursor("v:2"), status: 404, code: "account_not_found"},
		{name: "PROPFIND unknown path", method: "PROPFIND", path: "/nope", status: 404, code: "not_found"},
		{name: "PROPFIND accounts", method: "PROPFIND", path: "/accounts", status: 405, code: "method_not_allowed", allow: "POST"},

		// 404 not_found, 405 method_not_allowed
		{name: "unknown path", method: "GET", path: "/nope", status: 404, code: "not_found"},
		{name: "unknown action", method: "POST", path: "/accounts/" + usd + "/transfer", body: map[string]any{"amount": "1.00"}, status: 404, code: "not_found"},
		{name: "too deep", method: "POST", path: dep + "/again", body: map[string]any{"amount": "1.00"}, status: 404, code: "not_found"},
		{name: "GET deposit", method: "GET", path: dep, status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "PUT withdraw", method: "PUT", path: wd, body: map[string]any{"amount": "1.00"}, status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "DELETE close", method: "DELETE", path: cl, status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "DELETE accounts", method: "DELETE", path: "/accounts", status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "POST events", method: "POST", path: ev, body: map[string]any{}, status: 405, code: "method_not_allowed", allow: "GET"},
		{name: "POST healthz", method: "POST", path: "/healthz", status: 405, code: "method_not_allowed", allow: "GET"},

		// 409 account_exists
		{name: "id used", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "mallory", "id": usd}, status: 409, code: "account_exists"},
		{name: "id used upper case", method: "POST", path: "/accounts", body: map[string]any{"owner_id": "mallory", "id": strings.ToUpper(usd)}, status: 409, code: "account_exists"},

		// 412 version_conflict
		{name: "If-Match old version", method: "POST", path: dep, body: map[string]any{"amount": "1.00"}, header: []string{"If-Match", `"1"`}, status: 412, code: "version_conflict"},
		{name: "If-Match weak current", method: "POST", path: dep, body: map[string]any{"amount": "1.00"}, header: []string{"If-Match", `W/"2"`}, status: 412, code: "version_conflict"},
		{name: "If-Match future", method: "POST", path: wd, body: map[string]any{"amount": "1.00"}, header: []string{"If-Match", `"3"`}, status: 412, code: "version_conflict"},
		{name: "If-Match list without current", method: "POST", path: wd, body: map[string]any{"amount": "1.00"}, header: []string{"If-Match", `"1", "3"`}, status: 412, code: "version_conflict"},
		{name: "If-Match not a version", method: "POST", path: cl, header: []string{"If-Match", `"abc"`}, status: 412, code: "version_conflict"},
		{name: "If-Match leading zero", method: "POST", path: cl, header: []string{"If-Match", `"02"`}, status: 412, code: "version_conflict"},

		// 422
		{name: "insufficient funds", method: "POST", path: wd, body: map[string]any{"amount": "100.01"}, status: 422, code: "insufficient_funds"},
		{name: "insufficient JPY", method: "POST", path: "/accounts/" + jpy + "/withdraw", body: map[string]any{"amount": "501"}, status: 422, code: "insufficient_funds"},
		{name: "deposit closed", method: "POST", path: "/accounts/" + closed + "/deposit", body: map[string]any{"amount": "1.00"}, status: 422, code: "account_closed"},
		{name: "withdraw closed", method: "POST", path: "/accounts/" + closed + "/withdraw", body: map[string]any{"amount": "1.00"}, status: 422, code: "account_closed"},
		{name: "close closed", method: "POST", path: "/accounts/" + closed + "/close", status: 422, code: "account_closed"},
		{name: "close with balance", method: "POST", path: cl, body: map[string]any{"reason": "moving"}, status: 422, code: "balance_not_zero"},
		{name: "balance over limit", method: "POST", path: "/accounts/" + full + "/deposit", body: map[string]any{"amount": "0.01"}, status: 422, code: "balance_limit_exceeded"},
	}
	for _, amount := range []string{"1.234", "1e5", "1E5", "-1", "+1", "01", "00.50", "1.", ".5", "", " 1.00", "1.00 ", "1,00", "0", "0.00", "0.0", "NaN", "Infinity", "0x10", "１", "10000000000000.01", "99999999999999999999999"} {
		rows = append(rows, row{name: "amount " + strconv.Quote(amount), method: "POST", path: dep, body: map[string]any{"amount": amount}, status: 400, code: "validation_failed", field: "amount"})
	}

	events := a.eventCount(t)
	notIDChars := regexp.MustCompile(`[^A-Za-z0-9]+`)
	for i, c := range rows {
		t.Run(c.name, func(t *testing.T) {
			reqID := fmt.Sprintf("row-%d.%s", i, notIDChars.ReplaceAllString(c.name, "_"))
			r := a.as(t).do(c.method, c.path, c.body, append([]string{"X-Request-ID", reqID}, c.header...)...)
			expectProblem(t, r, c.status, c.code, c.field)
			if got := r.Header.Get("X-Request-ID"); got != reqID {
				t.Errorf("X-Request-ID %q, want the request's %q", got, reqID)
			}
			if c.allow != "" && !slices.Contains(strings.Split(r.Header.Get("Allow"), ", "), c.allow) {
				t.Errorf("Allow %q does not list %s", r.Header.Get("Allow"), c.allow)
			}
			if n := a.eventCount(t); n != events {
				t.Fatalf("%d events appended by a rejected request", n-events)
			}
		})
	}
	if n := a.count(t, `SELECT count(*) FROM idempotency_keys`); n != 0 {
		t.Errorf("%d idempotency records stored by rejected requests without a key", n)
	}
	// The accounts are as they were.
	if acc := loadAccount(t, a, usd); acc.Version() != 2 || acc.Balance() != 10000 {
		t.Errorf("account after the rejections: version %d balance %d, want 2 and 10000", acc.Version(), acc.Balance())
	}
}

// TestConcurrencyConflict runs two API processes with no retries against one
// account at once: a lost race is 409 concurrency_conflict with Retry-After,
// changes nothing, and is safe to retry. The two loads are paired (each
// waits for the other), so both decide on the same version and one append
// must lose, however the machine schedules them.
func TestConcurrencyConflict(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	paired := &pairedLoads{EventStore: a.events}
	noRetry := command.Config{DefaultCurrency: domain.MustCurrency("USD"), MaxAttempts: 1, CacheSize: -1}
	procs := make([]*testAPI, 2)
	for i := range procs {
		procs[i] = a.sibling(func(d *httpapi.Deps) { d.Commands = command.NewService(paired, noRetry) })
	}
	id := mustOpen(t, a, map[string]any{"owner_id": "hot"})["id"].(string)

	var ok, conflicts int
	results := race(t, 2, func(i int) (response, error) {
		return procs[i].try("POST", "/accounts/"+id+"/deposit", map[string]any{"amount": "1.00"})
	})
	for _, r := range results {
		switch r.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflicts++
			expectProblem(t, r, 409, "concurrency_conflict", "")
			if ra := r.Header.Get("Retry-After"); ra == "" {
				t.Errorf("409 concurrency_conflict without Retry-After")
			}
		default:
			t.Fatalf("deposit: %d %s", r.StatusCode, r.Body)
		}
	}
	if ok != 1 || conflicts != 1 {
		t.Fatalf("two deposits decided on one version: %d ok, %d conflicts; want 1 and 1", ok, conflicts)
	}
	trail := auditTrail(t, a, id)
	if len(trail) != 1+ok {
		t.Errorf("%d events for %d successful deposits (+1 opening)", len(trail), ok)
	}
	// Safe to retry: the service with retries gets through.
	r := a.do("POST", "/accounts/"+id+"/deposit", map[string]any{"amount": "1.00"})
	if r.StatusCode != 200 || r.JSON(t)["balance"] != fmt.Sprintf("%d.00", ok+1) {
		t.Errorf("retry after conflicts: %d %s (after %d successes)", r.StatusCode, r.Body, ok)
	}
	t.Logf("%d deposits went through, %d lost a race", ok, conflicts)
}

// TestOpenAccountResponse checks the success shape of POST /accounts.
func TestOpenAccountResponse(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := uuid.NewString()
	r := a.do("POST", "/accounts", map[string]any{"owner_id": "Zoë 🙂", "initial_deposit": "100", "id": id})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("open: %d %s", r.StatusCode, r.Body)
	}
	if loc := r.Header.Get("Location"); loc != "/accounts/"+id {
		t.Errorf("Location %q, want the relative /accounts/%s", loc, id)
	}
	if et := r.Header.Get("ETag"); et != `"2"` {
		t.Errorf("ETag %q, want \"2\"", et)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	want := map[string]any{"id": id, "owner_id": "Zoë 🙂", "currency": "USD", "balance": "100.00", "status": "active", "version": float64(2)}
	if got := r.JSON(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("body %v, want %v", got, want)
	}

	for _, tc := range []struct {
		name     string
		body     string
		currency string
		balance  string
		version  int
	}{
		{"currency absent", `{"owner_id":"o"}`, "USD", "0.00", 1},
		{"currency null", `{"owner_id":"o","currency":null}`, "USD", "0.00", 1},
		{"currency empty", `{"owner_id":"o","currency":""}`, "USD", "0.00", 1},
		{"initial zero", `{"owner_id":"o","initial_deposit":"0"}`, "USD", "0.00", 1},
		{"initial zero cents", `{"owner_id":"o","initial_deposit":"0.00"}`, "USD", "0.00", 1},
		{"initial one fraction digit", `{"owner_id":"o","initial_deposit":"1.5"}`, "USD", "1.50", 2},
		{"USD 1.0", `{"owner_id":"o","initial_deposit":"1.0"}`, "USD", "1.00", 2},
		{"JPY", `{"owner_id":"o","currency":"JPY","initial_deposit":"125"}`, "JPY", "125", 2},
		{"KWD", `{"owner_id":"o","currency":"KWD","initial_deposit":"1.25"}`, "KWD", "1.250", 2},
		{"EUR limit", `{"owner_id":"o","currency":"EUR","initial_deposit":"10000000000000"}`, "EUR", "10000000000000.00", 2},
		{"owner 128 runes", `{"owner_id":"` + strings.Repeat("é", 128) + `"}`, "USD", "0.00", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.as(t).do("POST", "/accounts", tc.body)
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("%d %s", r.StatusCode, r.Body)
			}
			m := r.JSON(t)
			if m["currency"] != tc.currency || m["balance"] != tc.balance || m["version"] != float64(tc.version) {
				t.Errorf("got %v; want currency %s balance %s version %d", m, tc.currency, tc.balance, tc.version)
			}
			trail := auditTrail(t, a.as(t), m["id"].(string))
			if len(trail) != tc.version || trail[0].Type != "AccountOpened" || trail[0].Data["currency"] != tc.currency {
				t.Errorf("audit trail %+v", trail)
			}
			if tc.version == 2 && trail[1].Type != "MoneyDeposited" {
				t.Errorf("the opening deposit is %s, want MoneyDeposited", trail[1].Type)
			}
		})
	}
}

// TestCommandResponses checks deposit, withdraw and close: body, ETag, minor
// digits, a close with no body at all, and If-Match that matches.
func TestCommandResponses(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{"owner_id": "erin", "currency": "KWD"})["id"].(string)

	r := a.do("POST", "/accounts/"+id+"/deposit", map[string]any{"amount": "2.5", "description": "pocket money"})
	if r.StatusCode != 200 || r.Header.Get("ETag") != `"2"` {
		t.Fatalf("deposit: %d ETag %q %s", r.StatusCode, r.Header.Get("ETag"), r.Body)
	}
	want := fmt.Sprint(map[string]any{"id": id, "owner_id": "erin", "currency": "KWD", "balance": "2.500", "status": "active", "version": float64(2)})
	if got := fmt.Sprint(r.JSON(t)); got != want {
		t.Errorf("deposit body %s, want %s", got, want)
	}
	if r.Header.Get("Location") != "" {
		t.Errorf("deposit sent Location %q", r.Header.Get("Location"))
	}
	// If-Match: the current version, a list holding it, and *.
	if m := mustCommand(t, a, id, "withdraw", map[string]any{"amount": "0.5"}, "If-Match", `"2"`); m["balance"] != "2.000" || m["version"] != float64(3) {
		t.Errorf("withdraw with If-Match \"2\": %v", m)
	}
	if m := mustCommand(t, a, id, "deposit", map[string]any{"amount": "0.001"}, "If-Match", `"9", W/"3", "3"`); m["balance"] != "2.001" {
		t.Errorf("deposit with an If-Match list: %v", m)
	}
	if m := mustCommand(t, a, id, "withdraw", map[string]any{"amount": "2.001"}, "If-Match", "*"); m["balance"] != "0.000" || m["version"] != float64(5) {
		t.Errorf("withdraw with If-Match *: %v", m)
	}
	// Close with no body and no Content-Type.
	r = a.do("POST", "/accounts/"+id+"/close", nil)
	if r.StatusCode != 200 {
		t.Fatalf("close with an empty body: %d %s", r.StatusCode, r.Body)
	}
	if m := r.JSON(t); m["status"] != "closed" || m["version"] != float64(6) || r.Header.Get("ETag") != `"6"` {
		t.Errorf("close: %v ETag %s", m, r.Header.Get("ETag"))
	}
	// Close with a reason, after If-Match.
	id2 := mustOpen(t, a, map[string]any{"owner_id": "frank"})["id"].(string)
	if m := mustCommand(t, a, id2, "close", map[string]any{"reason": "moving abroad"}, "If-Match", `"1"`); m["status"] != "closed" {
		t.Errorf("close with reason: %v", m)
	}
	// Close with an empty JSON object.
	id3 := mustOpen(t, a, map[string]any{"owner_id": "gina"})["id"].(string)
	mustCommand(t, a, id3, "close", `{}`)

	trail := auditTrail(t, a, id)
	types := make([]string, len(trail))
	for i, e := range trail {
		types[i] = e.Type
	}
	if want := []string{"AccountOpened", "MoneyDeposited", "MoneyWithdrawn", "MoneyDeposited", "MoneyWithdrawn", "AccountClosed"}; !slices.Equal(types, want) {
		t.Errorf("event types %v, want %v", types, want)
	}
	if d := trail[1].Data; d["amount_minor"] != float64(2500) || d["currency"] != "KWD" || d["description"] != "pocket money" {
		t.Errorf("MoneyDeposited data %v", d)
	}
	if trail[1].SchemaVersion != 2 {
		t.Errorf("schema_version %d, want 2", trail[1].SchemaVersion)
	}
	if trail2 := auditTrail(t, a, id2); trail2[1].Data["reason"] != "moving abroad" {
		t.Errorf("AccountClosed data %v", trail2[1].Data)
	}
	// Past the end of an existing trail: an empty last page.
	r = a.do("GET", "/accounts/"+id+"/events?cursor="+base64.RawURLEncoding.EncodeToString([]byte("v:99")), nil)
	if r.StatusCode != 200 || string(r.Body) != `{"items":[],"next_cursor":null}` {
		t.Errorf("past the end: %d %s", r.StatusCode, r.Body)
	}
	// Text at its limits: 500 characters of description and reason.
	id5 := mustOpen(t, a, map[string]any{"owner_id": "ike"})["id"].(string)
	mustCommand(t, a, id5, "deposit", map[string]any{"amount": "1", "description": strings.Repeat("ü", 500)})
	mustCommand(t, a, id5, "withdraw", map[string]any{"amount": "1", "description": strings.Repeat("ü", 500)})
	mustCommand(t, a, id5, "close", map[string]any{"reason": strings.Repeat("ü", 500)})
}

// TestRequestIDAndMetadata checks X-Request-ID (echoed when valid, replaced
// when not, on successes and errors) and the metadata recorded with events.
func TestRequestIDAndMetadata(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	idPattern := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	valid := "Req-1.a:b_c-" + strings.Repeat("z", 116) // 128 characters
	for _, tc := range []struct {
		name, sent string
		echoed     bool
	}{
		{"valid", valid, true},
		{"129 characters", valid + "z", false},
		{"space", "req 1", false},
		{"slash", "req/1", false},
		{"non-ASCII", "réq", false},
		{"absent", "<delete>", false},
	} {
		for _, req := range []struct {
			path string
			body any
			ok   bool
		}{
			{"/accounts", map[string]any{"owner_id": "ivy"}, true},
			{"/accounts", map[string]any{"owner_id": ""}, false},
			{"/nope", nil, false},
		} {
			r := a.do("POST", req.path, req.body, "X-Request-ID", tc.sent)
			got := r.Header.Get("X-Request-ID")
			switch {
			case tc.echoed && got != tc.sent:
				t.Errorf("%s on %s: X-Request-ID %q, want it echoed", tc.name, req.path, got)
			case !tc.echoed && (got == tc.sent || !idPattern.MatchString(got)):
				t.Errorf("%s on %s: X-Request-ID %q, want a generated one", tc.name, req.path, got)
			}
			if (r.StatusCode < 300) != req.ok {
				t.Errorf("%s on %s: status %d", tc.name, req.path, r.StatusCode)
			}
		}
	}

	// Metadata: correlation from X-Correlation-ID, causation = request id,
	// key, and the principal who asked.
	r := a.do("POST", "/accounts", map[string]any{"owner_id": "jack", "initial_deposit": "5.00"},
		"X-Request-ID", "open-1", "X-Correlation-ID", "journey-7", "Idempotency-Key", "open-jack")
	id := r.JSON(t)["id"].(string)
	mustCommand(t, a, id, "deposit", map[string]any{"amount": "1.00"}, "X-Request-ID", "dep-1")
	r = a.do("POST", "/accounts/"+id+"/withdraw", map[string]any{"amount": "1.00"}, "X-Correlation-ID", "bad correlation!")
	generated := r.Header.Get("X-Request-ID")
	trail := auditTrail(t, a, id)
	want := []map[string]any{
		{"correlation_id": "journey-7", "causation_id": "open-1", "idempotency_key": "open-jack", "principal": adminSubject},
		{"correlation_id": "journey-7", "causation_id": "open-1", "idempotency_key": "open-jack", "principal": adminSubject},
		{"correlation_id": "dep-1", "causation_id": "dep-1", "principal": adminSubject},
		{"correlation_id": generated, "causation_id": generated, "principal": adminSubject},
	}
	if len(trail) != len(want) {
		t.Fatalf("%d events, want %d", len(trail), len(want))
	}
	for i, e := range trail {
		if fmt.Sprint(e.Metadata) != fmt.Sprint(want[i]) {
			t.Errorf("version %d metadata %v, want %v", e.Version, e.Metadata, want[i])
		}
	}
}

// TestConcurrentDeposits: 200 deposits of 1.00 at once on one account all
// succeed, with versions 1..201 and no gap, and the balance is exactly 200.00.
func TestConcurrentDeposits(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{"owner_id": "kim"})["id"].(string) // version 1
	const n = 200
	results := race(t, n, func(int) (response, error) {
		return a.try("POST", "/accounts/"+id+"/deposit", map[string]any{"amount": "1.00"})
	})
	versions := map[float64]bool{}
	for _, r := range results {
		if r.StatusCode != http.StatusOK {
			t.Fatalf("deposit: %d %s", r.StatusCode, r.Body)
		}
		m := r.JSON(t)
		versions[m["version"].(float64)] = true
		if m["version"] == float64(n+1) && m["balance"] != "200.00" {
			t.Errorf("last deposit's balance %v, want 200.00", m["balance"])
		}
	}
	if len(versions) != n {
		t.Errorf("%d distinct versions in %d responses", len(versions), n)
	}
	if v := slices.Max(slices.Collect(maps.Keys(versions))); v != n+1 {
		t.Errorf("highest version %v, want %d", v, n+1)
	}
	trail := auditTrail(t, a, id) // versions 1..201, no gap
	if len(trail) != n+1 {
		t.Errorf("%d events, want %d", len(trail), n+1)
	}
	if acc := loadAccount(t, a, id); acc.Balance() != 20000 || acc.Version() != n+1 {
		t.Errorf("balance %d version %d, want 20000 and %d", acc.Balance(), acc.Version(), n+1)
	}
}

// TestConcurrentWithdrawals: 50 withdrawals of 10.00 from 100.00 at once,
// exactly 10 succeed and the balance ends at 0.00.
func TestConcurrentWithdrawals(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{"owner_id": "lou", "initial_deposit": "100.00"})["id"].(string)
	results := race(t, 50, func(int) (response, error) {
		return a.try("POST", "/accounts/"+id+"/withdraw", map[string]any{"amount": "10.00"})
	})
	var ok, refused int
	for _, r := range results {
		switch r.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusUnprocessableEntity:
			refused++
			expectProblem(t, r, 422, "insufficient_funds", "")
		default:
			t.Errorf("withdraw: %d %s", r.StatusCode, r.Body)
		}
	}
	if ok != 10 || refused != 40 {
		t.Errorf("%d withdrawals succeeded and %d were refused, want 10 and 40", ok, refused)
	}
	if len(auditTrail(t, a, id)) != 12 {
		t.Error("want 12 events: opened, deposited, 10 withdrawals")
	}
	if acc := loadAccount(t, a, id); acc.Balance() != 0 {
		t.Errorf("balance %s, want 0.00", domain.FormatAmount(acc.Balance(), acc.Currency()))
	}
}

// race runs n calls at once (released together) and returns their responses.
// pairedLoads is the real store whose loads wait for each other in pairs
// (up to a few seconds), so that two commands decide on the same version.
type pairedLoads struct {
	*store.EventStore
	mu      sync.Mutex
	waiting chan struct{}
}

func (p *pairedLoads) Load(ctx context.Context, id uuid.UUID) (*domain.Account, error) {
	a, err := p.EventStore.Load(ctx, id)
	p.mu.Lock()
	if p.waiting == nil {
		ch := make(chan struct{})
		p.waiting = ch
		p.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
		}
		return a, err
	}
	close(p.waiting)
	p.waiting = nil
	p.mu.Unlock()
	return a, err
}

func race(t *testing.T, n int, call func(i int) (response, error)) []response {
	t.Helper()
	results := make([]response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = call(i)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return results
}

// checkReplays wants every response equal to the one that was not replayed:
// status and bytes of the body, with Idempotent-Replayed on all the others.
func checkReplays(t *testing.T, results []response) response {
	t.Helper()
	var first []response
	for _, r := range results {
		if r.Header.Get("Idempotent-Replayed") == "" {
			first = append(first, r)
		}
	}
	if len(first) != 1 {
		t.Fatalf("%d of %d responses are not replays, want exactly 1", len(first), len(results))
	}
	for _, r := range results {
		if r.StatusCode != first[0].StatusCode || string(r.Body) != string(first[0].Body) {
			t.Errorf("response %d %s differs from the first %d %s", r.StatusCode, r.Body, first[0].StatusCode, first[0].Body)
		}
		if r.Header.Get("ETag") != first[0].Header.Get("ETag") || r.Header.Get("Location") != first[0].Header.Get("Location") {
			t.Errorf("replay headers ETag %q Location %q differ from the first's %q %q", r.Header.Get("ETag"), r.Header.Get("Location"),
				first[0].Header.Get("ETag"), first[0].Header.Get("Location"))
		}
	}
	return first[0]
}

// TestIdempotentDuplicatesAtOnce: one key sent 20 times at once appends once
// and answers every request with the first answer.
func TestIdempotentDuplicatesAtOnce(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{"owner_id": "mia"})["id"].(string)

	before := a.eventCount(t)
	results := race(t, 20, func(int) (response, error) {
		return a.try("POST", "/accounts/"+id+"/deposit", map[string]any{"amount": "7.00"}, "Idempotency-Key", "dep-once")
	})
	if first := checkReplays(t, results); first.StatusCode != 200 {
		t.Fatalf("deposit: %d %s", first.StatusCode, first.Body)
	}
	if n := a.eventCount(t) - before; n != 1 {
		t.Errorf("%d events appended, want 1", n)
	}
	if acc := loadAccount(t, a, id); acc.Balance() != 700 {
		t.Errorf("balance %d, want 700", acc.Balance())
	}

	// Opening without an id: each request would make its own stream, the key
	// still lets only one through.
	before = a.eventCount(t)
	results = race(t, 20, func(int) (response, error) {
		return a.try("POST", "/accounts", map[string]any{"owner_id": "nina", "initial_deposit": "3.00"}, "Idempotency-Key", "open-once")
	})
	if first := checkReplays(t, results); first.StatusCode != 201 {
		t.Fatalf("open: %d %s", first.StatusCode, first.Body)
	}
	if n := a.eventCount(t) - before; n != 2 {
		t.Errorf("%d events appended, want 2 (one account)", n)
	}
	if n := a.count(t, `SELECT count(DISTINCT stream_id) FROM events WHERE data->>'owner_id' = 'nina'`); n != 1 {
		t.Errorf("%d accounts opened, want 1", n)
	}
}

// TestIdempotencyRules covers the key's other promises one by one.
func TestIdempotencyRules(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{"owner_id": "olga"})["id"].(string)
	dep := "/accounts/" + id + "/deposit"
	wd := "/accounts/" + id + "/withdraw"

	t.Run("equal JSON replays, another body is refused", func(t *testing.T) {
		a := a.as(t)
		first := a.do("POST", dep, `{"amount":"1.00","description":"rent"}`, "Idempotency-Key", "k1")
		if first.StatusCode != 200 {
			t.Fatalf("%d %s", first.StatusCode, first.Body)
		}
		before := a.eventCount(t)
		again := a.do("POST", dep, "{ \"description\" : \"rent\",\n \"amount\": \"1.00\" }", "Idempotency-Key", "k1")
		if again.StatusCode != 200 || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("equal JSON: %d %q %s, want the first answer replayed", again.StatusCode, again.Header.Get("Idempotent-Replayed"), again.Body)
		}
		other := a.do("POST", dep, `{"amount":"2.00","description":"rent"}`, "Idempotency-Key", "k1")
		expectProblem(t, other, 422, "idempotency_key_reused", "")
		if n := a.eventCount(t) - before; n != 0 {
			t.Errorf("%d events appended by a replay and a reused key", n)
		}
	})

	t.Run("a 422 is kept and replayed even after the account changed", func(t *testing.T) {
		a := a.as(t)
		body := map[string]any{"amount": "1000.00"}
		first := a.do("POST", wd, body, "Idempotency-Key", "k2")
		expectProblem(t, first, 422, "insufficient_funds", "")
		mustCommand(t, a, id, "deposit", map[string]any{"amount": "5000.00"})
		before := a.eventCount(t)
		again := a.do("POST", wd, body, "Idempotency-Key", "k2")
		expectProblem(t, again, 422, "insufficient_funds", "")
		if string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay of a 422: %q %s", again.Header.Get("Idempotent-Replayed"), again.Body)
		}
		if n := a.eventCount(t) - before; n != 0 {
			t.Errorf("%d events appended by the replay", n)
		}
		// Without the key the same request now goes through.
		mustCommand(t, a, id, "withdraw", body)
	})

	t.Run("keys are scoped to method and path", func(t *testing.T) {
		a := a.as(t)
		before := a.eventCount(t)
		mustCommand(t, a, id, "deposit", map[string]any{"amount": "3.00"}, "Idempotency-Key", "shared")
		mustCommand(t, a, id, "withdraw", map[string]any{"amount": "3.00"}, "Idempotency-Key", "shared")
		other := mustOpen(t, a, map[string]any{"owner_id": "pat"}, "Idempotency-Key", "shared")["id"].(string)
		mustCommand(t, a, other, "deposit", map[string]any{"amount": "3.00"}, "Idempotency-Key", "shared")
		if n := a.eventCount(t) - before; n != 4 {
			t.Errorf("%d events appended, want 4 independent commands", n)
		}
	})

	t.Run("a 400 is not kept", func(t *testing.T) {
		a := a.as(t)
		bad := a.do("POST", dep, map[string]any{"amount": "1.001"}, "Idempotency-Key", "k3")
		expectProblem(t, bad, 400, "validation_failed", "amount")
		notFound := a.do("POST", "/accounts/"+uuid.NewString()+"/deposit", map[string]any{"amount": "1.00"}, "Idempotency-Key", "k3")
		expectProblem(t, notFound, 404, "account_not_found", "")
		good := a.do("POST", dep, map[string]any{"amount": "1.00"}, "Idempotency-Key", "k3")
		if good.StatusCode != 200 || good.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("after a 400 under the key: %d %s", good.StatusCode, good.Body)
		}
	})

	t.Run("a 412 is not kept", func(t *testing.T) {
		a := a.as(t)
		stale := a.do("POST", dep, map[string]any{"amount": "1.00"}, "Idempotency-Key", "k4", "If-Match", `"1"`)
		expectProblem(t, stale, 412, "version_conflict", "")
		v := loadAccount(t, a, id).Version()
		good := a.do("POST", dep, map[string]any{"amount": "1.00"}, "Idempotency-Key", "k4", "If-Match", etagOf(v))
		if good.StatusCode != 200 {
			t.Errorf("after a 412 under the key: %d %s", good.StatusCode, good.Body)
		}
	})

	t.Run("an open is replayed with its Location", func(t *testing.T) {
		a := a.as(t)
		first := a.do("POST", "/accounts", map[string]any{"owner_id": "quinn"}, "Idempotency-Key", "k5")
		again := a.do("POST", "/accounts", map[string]any{"owner_id": "quinn"}, "Idempotency-Key", "k5")
		if again.StatusCode != 201 || again.Header.Get("Location") != first.Header.Get("Location") || string(again.Body) != string(first.Body) {
			t.Errorf("replayed open: %d Location %q %s; first %q %s", again.StatusCode, again.Header.Get("Location"), again.Body, first.Header.Get("Location"), first.Body)
		}
	})
}

func etagOf(v int) string { return `"` + strconv.Itoa(v) + `"` }

// TestLongStream: an account with 1,000 events loads and takes a command over
// HTTP, its audit trail pages through all of them, and stored events cannot be
// changed.
func TestLongStream(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	ctx := context.Background()
	id := uuid.New()
	usd := domain.MustCurrency("USD")
	acc := domain.NewAccount(id)
	now := time.Now()
	if err := acc.Open("rita", usd, 0, now); err != nil {
		t.Fatal(err)
	}
	for range 999 {
		if err := acc.Deposit(1, usd, "", now); err != nil {
			t.Fatal(err)
		}
	}
	// A store without snapshots, so the command below folds all 1,000 events.
	bulk := store.NewEventStore(a.pool, store.Options{DefaultCurrency: usd})
	if err := bulk.Append(ctx, command.Append{Account: acc, ExpectedVersion: 0}); err != nil {
		t.Fatal(err)
	}
	if n := a.count(t, `SELECT count(*) FROM snapshots`); n != 0 {
		t.Fatalf("%d snapshots; the test wants none", n)
	}

	start := time.Now()
	r := a.do("POST", "/accounts/"+id.String()+"/deposit", map[string]any{"amount": "0.01"}, "If-Match", `"1000"`)
	if r.StatusCode != 200 || r.Header.Get("ETag") != `"1001"` {
		t.Fatalf("deposit on a 1,000-event stream: %d %s", r.StatusCode, r.Body)
	}
	if m := r.JSON(t); m["balance"] != "10.00" || m["version"] != float64(1001) {
		t.Errorf("after 1,000 events: %v, want balance 10.00 version 1001", m)
	}
	t.Logf("load + decide + append over 1,000 events: %v", time.Since(start))
	if trail := auditTrail(t, a, id.String()); len(trail) != 1001 {
		t.Errorf("audit trail has %d events, want 1001", len(trail))
	}

	for _, sql := range []string{
		`UPDATE events SET data = '{}' WHERE stream_id = $1 AND version = 2`,
		`DELETE FROM events WHERE stream_id = $1 AND version = 1001`,
	} {
		if _, err := a.pool.Exec(ctx, sql, id); err == nil {
			t.Errorf("%s succeeded; events must be append-only", sql)
		}
	}
	if _, err := a.pool.Exec(ctx, `TRUNCATE events`); err == nil {
		t.Error("TRUNCATE events succeeded; events must be append-only")
	}
	r = a.do("GET", "/accounts/"+id.String()+"/events?limit=2", nil)
	var page struct {
		Items []auditEvent `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil || len(page.Items) != 2 || page.Items[1].Data["amount_minor"] != float64(1) {
		t.Errorf("events after the refused changes: %v %s", err, r.Body)
	}
	if r := a.do("POST", "/accounts/"+id.String()+"/withdraw", map[string]any{"amount": "10.00"}); r.StatusCode != 200 || r.JSON(t)["balance"] != "0.00" {
		t.Errorf("withdraw all: %d %s", r.StatusCode, r.Body)
	}
}

// TestHostileInputs: whatever arrives, the answer is a 4xx problem, never a
// 5xx, and nothing is appended.
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{"owner_id": "sam", "initial_deposit": "1.00"})["id"].(string)
	dep := "/accounts/" + id + "/deposit"
	nested := strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000)
	deepArray := `{"owner_id":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`

	cases := []struct {
		path   string
		body   string
		header []string
	}{
		{"/accounts", `{"owner_id":1e309}`, nil},
		{"/accounts", `{"owner_id":null}`, nil},
		{"/accounts", `{"owner_id":true}`, nil},
		{"/accounts", `{"owner_id":["a"]}`, nil},
		{"/accounts", `{"owner_id":{"first":"a"}}`, nil},
		{"/accounts", `{"owner_id":"a\u0000b"}`, nil},
		{"/accounts", `{"owner_id":"\u202e\u0000"}`, nil},
		{"/accounts", `{"owner_id":"x","currency":"€UR"}`, nil},
		{"/accounts", `{"owner_id":"x","currency":"ＵＳＤ"}`, nil},
		{"/accounts", `{"owner_id":"x","initial_deposit":"9223372036854775808"}`, nil},
		{"/accounts", `{"owner_id":"x","initial_deposit":"184467440737095516160000"}`, nil},
		{"/accounts", `{"owner_id":"x","initial_deposit":"1` + strings.Repeat("0", 5000) + `"}`, nil},
		{"/accounts", `{"owner_id":"x","initial_deposit":"0.` + strings.Repeat("0", 5000) + `1"}`, nil},
		{"/accounts", `{"owner_id":"x","initial_deposit":1e400}`, nil},
		{"/accounts", `{"owner_id":"x","id":"` + strings.Repeat("f", 10000) + `"}`, nil},
		{"/accounts", `{"owner_id":"x","owner_id":7}`, nil},
		{"/accounts", `{"owner_id":"x",}`, nil},
		{"/accounts", `{'owner_id':'x'}`, nil},
		{"/accounts", "\xff\xfe{\x00}", nil},
		{"/accounts", nested, nil},
		{"/accounts", deepArray, nil},
		{"/accounts", `null`, nil},
		{"/accounts", `"owner"`, nil},
		{"/accounts", `12`, nil},
		{"/accounts", `{"owner_id":"x"}`, []string{"Content-Type", "application/json;;charset"}},
		{"/accounts", `{"owner_id":"x"}`, []string{"Content-Type", "application/xml"}},
		{"/accounts", `{"owner_id":"x"}`, []string{"Idempotency-Key", strings.Repeat("k", 10000)}},
		{dep, ``, nil},
		{dep, `   `, nil},
		{dep, `{}`, nil},
		{dep, `{"amount":null}`, nil},
		{dep, `{"amount":1e400}`, nil},
		{dep, `{"amount":-0}`, nil},
		{dep, `{"amount":["1.00"]}`, nil},
		{dep, `{"amount":"١٢٣"}`, nil},
		{dep, `{"amount":"1.00","description":{"x":1}}`, nil},
		{dep, `{"amount":"1.00","description":"` + strings.Repeat("💸", 501) + `"}`, nil},
		{dep, `{"amount":"1.00","description":"\u0000"}`, nil},
		{dep, `{"amount":"9999999999999999999999999999999999999999"}`, nil},
		{dep, `{"amount":"1.00"}`, []string{"If-Match", `"99999999999999999999999"`}},
		{dep, `{"amount":"1.00"}`, []string{"If-Match", `""`}},
		{dep, `{"amount":"1.00"}`, []string{"If-Match", ``}},
		{dep, `{"amount":"1.00"}`, []string{"If-Match", `,,,`}},
		{"/accounts/" + strings.Repeat("9", 5000) + "/deposit", `{"amount":"1.00"}`, nil},
		{"/accounts/%00/deposit", `{"amount":"1.00"}`, nil},
		{"/accounts/%2e%2e/withdraw", `{"amount":"1.00"}`, nil},
		{"/accounts/" + id + "%2Fdeposit", `{"amount":"1.00"}`, nil},
		{"/accounts/" + id + "/events?limit=99999999999999999999", ``, nil},
		{"/accounts/" + id + "/events?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("v:99999999999999999999")), ``, nil},
	}
	before := a.eventCount(t)
	for _, c := range cases {
		method := "POST"
		if strings.Contains(c.path, "/events") {
			method = "GET"
		}
		var body any = c.body
		if method == "GET" {
			body = nil
		}
		r := a.do(method, c.path, body, c.header...)
		if r.StatusCode < 400 || r.StatusCode >= 500 || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %.80s with %.80q: %d %q, want a 4xx problem: %.200s", method, c.path, c.body, r.StatusCode, r.Header.Get("Content-Type"), r.Body)
		}
	}
	if n := a.eventCount(t) - before; n != 0 {
		t.Errorf("%d events appended by hostile requests", n)
	}
}

// TestIdempotentDuplicatesAcrossProcesses: two API processes (no shared
// in-process lock) get the same key at once; the database lets one through.
func TestIdempotentDuplicatesAcrossProcesses(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	procs := []*testAPI{a, a.sibling()}
	id := mustOpen(t, a, map[string]any{"owner_id": "uma"})["id"].(string)

	before := a.eventCount(t)
	results := race(t, 20, func(i int) (response, error) {
		return procs[i%2].try("POST", "/accounts/"+id+"/deposit", map[string]any{"amount": "2.00"}, "Idempotency-Key", "two-procs")
	})
	if first := checkReplays(t, results); first.StatusCode != 200 {
		t.Fatalf("deposit: %d %s", first.StatusCode, first.Body)
	}
	results = race(t, 20, func(i int) (response, error) {
		return procs[i%2].try("POST", "/accounts", map[string]any{"owner_id": "vic"}, "Idempotency-Key", "two-procs")
	})
	if first := checkReplays(t, results); first.StatusCode != 201 {
		t.Fatalf("open: %d %s", first.StatusCode, first.Body)
	}
	if n := a.eventCount(t) - before; n != 2 {
		t.Errorf("%d events appended, want 2 (one deposit, one opening)", n)
	}

	// With If-Match too: the duplicate that finds the version moved (or loses
	// the append) by its own first attempt's doing gets that answer, not 412.
	for round := range 3 {
		id := mustOpen(t, a, map[string]any{"owner_id": "wim"})["id"].(string)
		results := race(t, 20, func(i int) (response, error) {
			return procs[i%2].try("POST", "/accounts/"+id+"/deposit", map[string]any{"amount": "4.00"}, "Idempotency-Key", "pinned", "If-Match", `"1"`)
		})
		if first := checkReplays(t, results); first.StatusCode != 200 {
			t.Fatalf("round %d: deposit: %d %s", round, first.StatusCode, first.Body)
		}
		results = race(t, 20, func(i int) (response, error) {
			return procs[i%2].try("POST", "/accounts/"+id+"/withdraw", map[string]any{"amount": "4.00"}, "Idempotency-Key", "pinned", "If-Match", `"2"`)
		})
		if first := checkReplays(t, results); first.StatusCode != 200 {
			t.Fatalf("round %d: withdraw: %d %s", round, first.StatusCode, first.Body)
		}
		if n := len(auditTrail(t, a, id)); n != 3 {
			t.Errorf("round %d: %d events, want 3", round, n)
		}
	}
}

// TestOpenSameIDAtOnce: ten opens of one client-chosen id at once, on two
// processes: one account, the others are told it exists.
func TestOpenSameIDAtOnce(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	procs := []*testAPI{a, a.sibling()}
	id := uuid.NewString()
	results := race(t, 10, func(i int) (response, error) {
		return procs[i%2].try("POST", "/accounts", map[string]any{"owner_id": fmt.Sprint("owner-", i), "id": id, "initial_deposit": "1.00"})
	})
	var created int
	for _, r := range results {
		if r.StatusCode == http.StatusCreated {
			created++
			continue
		}
		expectProblem(t, r, 409, "account_exists", "")
	}
	if created != 1 {
		t.Errorf("%d opens succeeded, want 1", created)
	}
	if trail := auditTrail(t, a, id); len(trail) != 2 {
		t.Errorf("%d events, want 2", len(trail))
	}
}

// TestBodySizeLimit: 1 MiB exactly is read, one byte more is 413.
func TestBodySizeLimit(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{"owner_id": "wes"})["id"].(string)
	body := func(size int) string {
		b := `{"amount":"1.00"}`
		return b + strings.Repeat(" ", size-len(b))
	}
	if r := a.do("POST", "/accounts/"+id+"/deposit", body(1<<20)); r.StatusCode != 200 {
		t.Errorf("1 MiB body: %d %s", r.StatusCode, r.Body)
	}
	before := a.eventCount(t)
	expectProblem(t, a.do("POST", "/accounts/"+id+"/deposit", body(1<<20+1)), 413, "body_too_large", "")
	expectProblem(t, a.do("POST", "/accounts/"+id+"/deposit", body(2<<20)), 413, "body_too_large", "")
	// Without a Content-Length (chunked), the limit holds too.
	r := a.do("POST", "/accounts/"+id+"/close", io.MultiReader(strings.NewReader(body(2<<20))))
	expectProblem(t, r, 413, "body_too_large", "")
	if n := a.eventCount(t) - before; n != 0 {
		t.Errorf("%d events appended by oversized requests", n)
	}
}

// TestLegacyEventsOverHTTP: a stream written by the legacy service (schema
// version 1) is shown in the v2 shape by the audit trail and takes commands;
// a legacy event that cannot be read is the server's failure (500, logged),
// not the client's bad input.
func TestLegacyEventsOverHTTP(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	ctx := context.Background()
	insertV1 := func(id uuid.UUID, version int, eventType, data string) {
		t.Helper()
		_, err := a.pool.Exec(ctx, `
INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
VALUES ($1, 'BankAccount', $2, gen_random_uuid(), $3, 1, $4::jsonb)`, id, version, eventType, data)
		if err != nil {
			t.Fatal(err)
		}
	}
	legacy := uuid.New()
	insertV1(legacy, 1, "AccountOpened", `{"accountId":"`+legacy.String()+`","ownerId":"old-timer","openedAt":"2019-03-01T10:00:00Z"}`)
	insertV1(legacy, 2, "MoneyDeposited", `{"amount":125.5,"description":"legacy","timestamp":"2019-03-01T10:00:01Z"}`)

	trail := auditTrail(t, a, legacy.String())
	if len(trail) != 2 || trail[0].SchemaVersion != 1 || trail[1].SchemaVersion != 1 {
		t.Fatalf("legacy audit trail %+v", trail)
	}
	if d := trail[0].Data; d["owner_id"] != "old-timer" || d["currency"] != "USD" || d["account_id"] != legacy.String() {
		t.Errorf("legacy AccountOpened shown as %v", d)
	}
	if d := trail[1].Data; d["amount_minor"] != float64(12550) || d["currency"] != "USD" {
		t.Errorf("legacy MoneyDeposited shown as %v", d)
	}
	if m := mustCommand(t, a, legacy.String(), "deposit", map[string]any{"amount": "1.00"}); m["balance"] != "126.50" || m["version"] != float64(3) || m["owner_id"] != "old-timer" {
		t.Errorf("deposit on a legacy stream: %v", m)
	}

	broken := uuid.New()
	insertV1(broken, 1, "AccountOpened", `{"accountId":"`+broken.String()+`","ownerId":"x","openedAt":"2019-03-01T10:00:00Z"}`)
	insertV1(broken, 2, "MoneyDeposited", `{"amount":1.234,"description":"","timestamp":"2019-03-01T10:00:01Z"}`)
	before := a.eventCount(t)
	for _, r := range []response{
		a.do("POST", "/accounts/"+broken.String()+"/deposit", map[string]any{"amount": "1.00"}),
		a.do("GET", "/accounts/"+broken.String()+"/events", nil),
	} {
		expectProblem(t, r, 500, "internal_error", "")
		if strings.Contains(string(r.Body), "position") {
			t.Errorf("a 500 explains internals to the client: %s", r.Body)
		}
	}
	if n := a.eventCount(t) - before; n != 0 {
		t.Errorf("%d events appended to an unreadable stream", n)
	}
}
