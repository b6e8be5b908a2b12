package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/evbank/bank/internal/domain"
)

// TestStrictBodies: DESIGN §2 "Bodies are strict JSON". Each body below is one
// that encoding/json alone would accept and read one way while another parser
// reads it another (or that names no JSON at all); each is refused before
// anything runs, and nothing is appended.
func TestStrictBodies(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{"owner_id": "strict", "initial_deposit": "100.00"})["id"].(string)
	dep := "/accounts/" + id + "/deposit"
	closePath := "/accounts/" + id + "/close"

	cases := []struct {
		name   string
		path   string
		body   string
		ct     string // "<delete>" sends none
		status int
		code   string
		field  string
	}{
		{"invalid UTF-8 in a value", dep, "{\"amount\":\"1.00\",\"description\":\"caf\xe9\"}", "application/json", 400, "malformed_request", ""},
		{"invalid UTF-8 in a key", dep, "{\"amount\":\"1.00\",\"d\xffescription\":\"x\"}", "application/json", 400, "malformed_request", ""},
		{"invalid UTF-8 between tokens", dep, "{\"amount\":\"1.00\"}\xff", "application/json", 400, "malformed_request", ""},
		{"encoded surrogate (CESU-8)", dep, "{\"amount\":\"1.00\",\"description\":\"\xed\xa0\x80\"}", "application/json", 400, "malformed_request", ""},
		{"lone high surrogate escape", dep, `{"amount":"1.00","description":"\ud800"}`, "application/json", 400, "malformed_request", ""},
		{"lone low surrogate escape", dep, `{"amount":"1.00","description":"\udc00x"}`, "application/json", 400, "malformed_request", ""},
		{"high surrogate then a non-low escape", dep, `{"amount":"1.00","description":"\ud800\u0041"}`, "application/json", 400, "malformed_request", ""},
		{"high surrogate then a high one", dep, `{"amount":"1.00","description":"\uD800\uD800"}`, "application/json", 400, "malformed_request", ""},
		{"high surrogate at the end of the string", dep, `{"amount":"1.00","description":"x\ud83d"}`, "application/json", 400, "malformed_request", ""},
		{"lone surrogate in a key", dep, `{"amount":"1.00","\ud800":"x"}`, "application/json", 400, "malformed_request", ""},
		{"duplicate key, last would win", dep, `{"amount":"1.00","amount":"50.00"}`, "application/json", 400, "malformed_request", ""},
		{"duplicate key spelled with an escape", dep, `{"amount":"1.00","\u0061mount":"50.00"}`, "application/json", 400, "malformed_request", ""},
		{"duplicate key in a nested object", dep, `{"amount":"1.00","description":{"a":1,"a":2}}`, "application/json", 400, "malformed_request", ""},
		{"duplicate key in an object in an array", dep, `{"amount":"1.00","description":[{"a":1},{"b":1,"b":2}]}`, "application/json", 400, "malformed_request", ""},
		{"problem+json is not application/json", dep, `{"amount":"1.00"}`, "application/problem+json", 400, "malformed_request", ""},
		{"a +json type", dep, `{"amount":"1.00"}`, "application/vnd.bank+json", 400, "malformed_request", ""},
		{"charset latin1", dep, `{"amount":"1.00"}`, "application/json; charset=latin1", 400, "malformed_request", ""},
		{"charset utf-16", dep, `{"amount":"1.00"}`, "application/json; charset=utf-16", 400, "malformed_request", ""},
		{"another parameter", dep, `{"amount":"1.00"}`, "application/json; charset=utf-8; profile=x", 400, "malformed_request", ""},
		{"a parameter that is not charset", dep, `{"amount":"1.00"}`, "application/json; version=2", 400, "malformed_request", ""},
		{"text/json", dep, `{"amount":"1.00"}`, "text/json", 400, "malformed_request", ""},
		{"no Content-Type", dep, `{"amount":"1.00"}`, "<delete>", 400, "malformed_request", ""},
		{"close with a body and no Content-Type", closePath, `{}`, "<delete>", 400, "malformed_request", ""},
		{"close with a body of another type", closePath, `{"reason":"x"}`, "text/plain", 400, "malformed_request", ""},
		{"empty amount", dep, `{"amount":""}`, "application/json", 400, "validation_failed", "amount"},
		{"empty id", "/accounts", `{"owner_id":"x","id":""}`, "application/json", 400, "validation_failed", "id"},
		{"empty initial deposit", "/accounts", `{"owner_id":"x","initial_deposit":""}`, "application/json", 400, "validation_failed", "initial_deposit"},
		{"owner_id with a right-to-left override", "/accounts", `{"owner_id":"alice\u202e"}`, "application/json", 400, "validation_failed", "owner_id"},
		{"owner_id with a zero-width space", "/accounts", `{"owner_id":"ali\u200bce"}`, "application/json", 400, "validation_failed", "owner_id"},
		{"description with an isolate", dep, `{"amount":"1.00","description":"\u2067x"}`, "application/json", 400, "validation_failed", "description"},
		{"reason with an override", closePath, `{"reason":"\u202dx"}`, "application/json", 400, "validation_failed", "reason"},
	}
	before := a.eventCount(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.as(t).do("POST", c.path, c.body, "Content-Type", c.ct)
			expectProblem(t, r, c.status, c.code, c.field)
		})
	}
	if n := a.eventCount(t) - before; n != 0 {
		t.Errorf("%d events appended by refused bodies", n)
	}

	// What the rules allow: the media type in any case, charset=utf-8 in any
	// case, a valid surrogate pair, the same key in two different objects, an
	// empty currency (the default), description or reason (none).
	allowed := []struct {
		name, path, body, ct string
		status               int
	}{
		{"type in upper case", dep, `{"amount":"1.00"}`, "Application/JSON", 200},
		{"charset utf-8", dep, `{"amount":"1.00"}`, "application/json; charset=utf-8", 200},
		{"charset UTF-8 quoted", dep, `{"amount":"1.00"}`, `application/json;CHARSET="UTF-8"`, 200},
		{"a surrogate pair", dep, `{"amount":"1.00","description":"\ud83d\udcb8 \uD83D\uDCB8"}`, "application/json", 200},
		{"an escaped backslash before u", dep, `{"amount":"1.00","description":"\\ud800"}`, "application/json", 200},
		{"empty description", dep, `{"amount":"1.00","description":""}`, "application/json", 200},
		{"empty currency", "/accounts", `{"owner_id":"x","currency":""}`, "application/json", 201},
		{"owner_id in another script with a combining mark", "/accounts", `{"owner_id":"Zoë e\u0301"}`, "application/json", 201},
	}
	for _, c := range allowed {
		t.Run(c.name, func(t *testing.T) {
			r := a.as(t).do("POST", c.path, c.body, "Content-Type", c.ct)
			if r.StatusCode != c.status {
				t.Errorf("%d %s, want %d", r.StatusCode, r.Body, c.status)
			}
		})
	}
	// Stored exactly as sent: the pair decodes to the emoji, the escaped
	// backslash stays a backslash.
	for _, e := range auditTrail(t, a, id) {
		if d, _ := e.Data["description"].(string); e.Type == "MoneyDeposited" && d != "" && d != "initial deposit" &&
			d != "💸 💸" && d != `\ud800` {
			t.Errorf("stored description %q", d)
		}
	}

	// Close with an empty body needs no Content-Type; nor does it mind one.
	acc := loadAccount(t, a, id)
	mustCommand(t, a, id, "withdraw", map[string]any{"amount": domain.FormatAmount(acc.Balance(), acc.Currency())})
	r := a.do("POST", closePath, "", "Content-Type", "<delete>")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("close with no body and no Content-Type: %d %s", r.StatusCode, r.Body)
	}
}
