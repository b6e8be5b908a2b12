package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
)

// TestTransferRefusals: every refusal of DESIGN §7 through the router, in
// the order the checks run, each with nothing appended.
func TestTransferRefusals(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	olivia, paula := a.bearer("olivia", "bank:read bank:write"), a.bearer("paula", "bank:read bank:write")
	open := func(who []string, body map[string]any) string {
		return mustOpen(t, a, body, who...)["id"].(string)
	}
	src := open(olivia, map[string]any{"initial_deposit": "10.00"})
	payee := open(paula, map[string]any{})
	closedDest := open(paula, map[string]any{})
	mustCommand(t, a, closedDest, "close", map[string]any{})
	closedSrc := open(olivia, map[string]any{})
	mustCommand(t, a, closedSrc, "close", map[string]any{})
	yen := open(paula, map[string]any{"currency": "JPY"})
	move := func(from, to, amount string) map[string]any {
		return map[string]any{"from_account_id": from, "to_account_id": to, "amount": amount}
	}
	before := a.eventCount(t)
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"not JSON", `{"from_account_id":`, 400, "malformed_request", ""},
		{"unknown field", map[string]any{"from_account_id": src, "to_account_id": payee, "amount": "1.00", "memo": "x"}, 400, "malformed_request", ""},
		{"no source", map[string]any{"to_account_id": payee, "amount": "1.00"}, 400, "validation_failed", "from_account_id"},
		{"source not a UUID", move("9B2F", payee, "1.00"), 400, "validation_failed", "from_account_id"},
		{"another's source, bad amount too", move(payee, src, "x"), 404, "account_not_found", ""},
		{"unknown source", move(uuid.NewString(), payee, "1.00"), 404, "account_not_found", ""},
		{"closed source, bad amount too", move(closedSrc, payee, "x"), 422, "account_closed", ""},
		{"bad amount, unknown destination too", move(src, uuid.NewString(), "1.001"), 400, "validation_failed", "amount"},
		{"destination not a UUID", move(src, "", "1.00"), 400, "validation_failed", "to_account_id"},
		{"empty id", map[string]any{"from_account_id": src, "to_account_id": payee, "amount": "1.00", "id": ""}, 400, "validation_failed", "id"},
		{"unknown destination, no funds too", move(src, uuid.NewString(), "50.00"), 422, "destination_not_found", ""},
		{"closed destination", move(src, closedDest, "1.00"), 422, "destination_closed", ""},
		{"to itself", move(src, src, "1.00"), 400, "validation_failed", "to_account_id"},
		{"other currency", move(src, yen, "1.00"), 422, "currency_mismatch", ""},
		{"no funds", move(src, payee, "10.01"), 422, "insufficient_funds", ""},
	} {
		expectProblem(t, a.do("POST", "/transfers", tc.body, olivia...), tc.status, tc.code, tc.field)
		if n := a.eventCount(t); n != before {
			t.Fatalf("%s: %d events appended by a refused transfer", tc.name, n-before)
		}
	}

	// A client-chosen id: 201 with Location, then 409 whatever the body.
	id := uuid.NewString()
	body := move(src, payee, "2.50")
	body["id"] = id
	r := a.do("POST", "/transfers", body, olivia...)
	if r.StatusCode != http.StatusCreated || r.Header.Get("Location") != "/transfers/"+id || r.JSON(t)["status"] != "completed" {
		t.Fatalf("transfer: %d %v %s", r.StatusCode, r.Header, r.Body)
	}
	body["amount"] = "1.00"
	expectProblem(t, a.do("POST", "/transfers", body, olivia...), 409, "transfer_exists", "")

	// Idempotency-Key: the first answer again, byte for byte; another body is 422.
	key := []string{"Idempotency-Key", "rent"}
	first := a.do("POST", "/transfers", move(src, payee, "1.00"), append(key, olivia...)...)
	again := a.do("POST", "/transfers", move(src, payee, "1.00"), append(key, olivia...)...)
	if first.StatusCode != 201 || again.StatusCode != 201 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s / %d %s", first.StatusCode, first.Body, again.StatusCode, again.Body)
	}
	expectProblem(t, a.do("POST", "/transfers", move(src, payee, "2.00"), append(key, olivia...)...), 422, "idempotency_key_reused", "")

	// Both owners see it; a third principal, as for an unknown transfer, does not.
	tid := first.JSON(t)["id"].(string)
	for _, who := range [][]string{olivia, paula} {
		if r := a.do("GET", "/transfers/"+tid, nil, who...); r.StatusCode != 200 || r.JSON(t)["status"] != "completed" {
			t.Errorf("GET /transfers/%s: %d %s", tid, r.StatusCode, r.Body)
		}
	}
	expectProblem(t, a.do("GET", "/transfers/"+tid, nil, a.bearer("mallory", "bank:read")...), 404, "transfer_not_found", "")
	// Balances from the write side: 10.00 - 2.50 - 1.00.
	if r := mustCommand(t, a, src, "deposit", map[string]any{"amount": "0.01"}, olivia...); r["balance"] != "6.51" {
		t.Errorf("source balance %v after the transfers and a deposit of 0.01, want 6.51", r["balance"])
	}
}
