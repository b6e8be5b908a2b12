package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// routeCase is how the ownership and scope walks exercise one route: the
// scope it needs and, for a POST, a body that would succeed for the owner.
type routeCase struct {
	scope string
	body  any
	// source, for a route whose account is in its body, builds that body.
	source func(account string) any
	// transfer: {id} is a transfer's id, not an account's.
	transfer bool
}

// routeCases lists every route behind authentication. The walks below fail
// for a route missing here, so a new route cannot land without its owner and
// scope checks being exercised.
var routeCases = map[string]routeCase{
	"POST /accounts":                     {scope: "bank:write", body: map[string]any{}},
	"POST /accounts/{id}/deposit":        {scope: "bank:write", body: map[string]any{"amount": "1.00"}},
	"POST /accounts/{id}/withdraw":       {scope: "bank:write", body: map[string]any{"amount": "1.00"}},
	"POST /accounts/{id}/close":          {scope: "bank:write", body: map[string]any{}},
	"GET /accounts":                      {scope: "bank:read"},
	"GET /accounts/{id}":                 {scope: "bank:read"},
	"GET /accounts/{id}/transactions":    {scope: "bank:read"},
	"GET /accounts/{id}/daily-summaries": {scope: "bank:read"},
	"GET /accounts/{id}/events":          {scope: "bank:read"},
	"GET /accounts/{id}/transfers":       {scope: "bank:read"},
	"GET /summary":                       {scope: "bank:admin"},
	"GET /events":                        {scope: "bank:admin"},
	"POST /transfers": {scope: "bank:write", source: func(account string) any {
		return map[string]any{"from_account_id": account, "to_account_id": uuid.NewString(), "amount": "1.00"}
	}},
	"GET /transfers/{id}": {scope: "bank:read", transfer: true},
}

// publicRoutes need no token (DESIGN §6).
var publicRoutes = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /docs": true, "GET /openapi.yaml": true,
	"GET /docs/*": true,
}

// walkRoutes calls fn with every route of the real router as "METHOD /pattern".
func walkRoutes(t *testing.T, a *testAPI, fn func(route, method, pattern string)) {
	t.Helper()
	routes, ok := a.router.(chi.Routes)
	if !ok {
		t.Fatalf("the router is a %T, not a chi.Routes", a.router)
	}
	err := chi.Walk(routes, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		fn(method+" "+pattern, method, pattern)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEveryRouteHidesOtherOwnersAccounts walks the router: each route that
// takes an account id answers another owner's account exactly as an unknown
// one and changes nothing, while the owner itself gets through.
func TestEveryRouteHidesOtherOwnersAccounts(t *testing.T) {
	t.Parallel()
	q := newQueryAPI(t)
	a := q.testAPI
	owner, mallory := a.bearer("olivia", "bank:read bank:write"), a.bearer("mallory", "bank:read bank:write")

	walkRoutes(t, a, func(route, method, pattern string) {
		if publicRoutes[route] {
			return
		}
		rc, known := routeCases[route]
		if !known {
			t.Errorf("route %s has no case in routeCases: add one so that its owner and scope checks are tested", route)
			return
		}
		if !strings.Contains(pattern, "{id}") && rc.source == nil {
			return // the routes without an account are checked one by one below
		}
		t.Run(route, func(t *testing.T) {
			a := a.as(t)
			id := mustOpen(t, a, map[string]any{"initial_deposit": "5.00"}, owner...)["id"].(string)
			q.project()
			target, body := id, rc.body
			if rc.transfer {
				payee := mustOpen(t, a, map[string]any{}, a.bearer("paula", "bank:write")...)["id"].(string)
				r := a.do("POST", "/transfers", map[string]any{"from_account_id": id, "to_account_id": payee, "amount": "1.00"}, owner...)
				if r.StatusCode != http.StatusCreated {
					t.Fatalf("transfer: %d %s", r.StatusCode, r.Body)
				}
				target = r.JSON(t)["id"].(string)
			}
			request := func(target string, who []string) response {
				if rc.source != nil {
					return a.do(method, pattern, rc.source(target), who...)
				}
				return a.do(method, strings.Replace(pattern, "{id}", target, 1), body, who...)
			}
			before := a.eventCount(t)

			theirs := request(target, mallory)
			unknown := request(uuid.NewString(), mallory)
			if rc.transfer {
				expectProblem(t, theirs, http.StatusNotFound, "transfer_not_found", "")
			} else {
				expectProblem(t, theirs, http.StatusNotFound, "account_not_found", "")
			}
			if theirs.StatusCode != unknown.StatusCode || string(theirs.Body) != string(unknown.Body) {
				t.Errorf("another owner's: %d %s; an unknown one: %d %s; want the same answer",
					theirs.StatusCode, theirs.Body, unknown.StatusCode, unknown.Body)
			}
			// min_version must not tell either ("never reached version 9").
			if method == http.MethodGet && strings.HasPrefix(pattern, "/accounts/{id}") && pattern != "/accounts/{id}/events" {
				r := a.do(method, strings.Replace(pattern, "{id}", target, 1)+"?min_version=9", nil, mallory...)
				expectProblem(t, r, http.StatusNotFound, "account_not_found", "")
			}
			if n := a.eventCount(t); n != before {
				t.Errorf("%d events appended by requests on another owner's account", n-before)
			}
			// The same request by the owner gets through: the 404 above is the
			// owner check, not a bad request (closing a funded account is 422,
			// a transfer to an unknown account too).
			if r := request(target, owner); r.StatusCode == http.StatusNotFound {
				t.Errorf("the owner's own request: %d %s", r.StatusCode, r.Body)
			}
		})
	})
}

// TestRoutesWithoutAnAccountIDKeepToTheirOwner covers the routes the walk
// above cannot: opening, listing and the admin-only summary.
func TestRoutesWithoutAnAccountIDKeepToTheirOwner(t *testing.T) {
	t.Parallel()
	q := newQueryAPI(t)
	a := q.testAPI
	olivia, mallory := a.bearer("olivia", "bank:read bank:write"), a.bearer("mallory", "bank:read bank:write")

	// Opening: no owner_id means the principal itself; another is 403.
	mine := mustOpen(t, a, map[string]any{}, olivia...)
	if mine["owner_id"] != "olivia" {
		t.Errorf("owner_id %v, want the token's sub", mine["owner_id"])
	}
	mustOpen(t, a, map[string]any{"owner_id": "olivia"}, olivia...)
	before := a.eventCount(t)
	expectProblem(t, a.do("POST", "/accounts", map[string]any{"owner_id": "olivia"}, mallory...), http.StatusForbidden, "forbidden", "")
	if n := a.eventCount(t); n != before {
		t.Errorf("a refused open appended %d events", n-before)
	}
	// An admin opens for anyone.
	mustOpen(t, a, map[string]any{"owner_id": "olivia"}, a.bearer("root", "bank:admin")...)

	// Listing: only one's own; naming another owner is 403.
	q.project()
	r := a.do("GET", "/accounts", nil, mallory...)
	if r.StatusCode != http.StatusOK || len(r.JSON(t)["items"].([]any)) != 0 {
		t.Errorf("mallory lists %d %s, want an empty page", r.StatusCode, r.Body)
	}
	r = a.do("GET", "/accounts", nil, olivia...)
	if items := r.JSON(t)["items"].([]any); len(items) != 3 {
		t.Errorf("olivia lists %d accounts, want her 3", len(items))
	}
	expectProblem(t, a.do("GET", "/accounts?owner_id=olivia", nil, mallory...), http.StatusForbidden, "forbidden", "")
	if r := a.do("GET", "/accounts?owner_id=mallory", nil, mallory...); r.StatusCode != http.StatusOK {
		t.Errorf("naming oneself: %d %s", r.StatusCode, r.Body)
	}

	// The summary is admin only.
	r = a.do("GET", "/summary", nil, olivia...)
	expectProblem(t, r, http.StatusForbidden, "forbidden", "")
	if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="insufficient_scope", scope="bank:admin"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	if r := a.do("GET", "/summary", nil, a.bearer("root", "bank:admin")...); r.StatusCode != http.StatusOK {
		t.Errorf("admin summary: %d %s", r.StatusCode, r.Body)
	}
}

// TestEveryRouteNeedsItsScope walks the router: without a token every
// non-public route is 401, and a token without the route's scope is 403
// naming the scope, with nothing appended.
func TestEveryRouteNeedsItsScope(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{}, a.bearer("olivia", "bank:read bank:write")...)["id"].(string)
	others := map[string]string{"bank:read": "bank:write", "bank:write": "bank:read", "bank:admin": "bank:read bank:write"}

	walkRoutes(t, a, func(route, method, pattern string) {
		rc, known := routeCases[route]
		if publicRoutes[route] || !known {
			return // unknown routes fail TestEveryRouteHidesOtherOwnersAccounts
		}
		path, body := strings.Replace(pattern, "{id}", id, 1), rc.body
		if rc.source != nil {
			body = rc.source(id)
		}
		before := a.eventCount(t)

		r := a.do(method, path, body, a.noToken()...)
		expectProblem(t, r, http.StatusUnauthorized, "unauthorized", "")
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="bank"` {
			t.Errorf("%s without a token: WWW-Authenticate %q", route, got)
		}
		r = a.do(method, path, body, a.bearer("olivia", others[rc.scope])...)
		expectProblem(t, r, http.StatusForbidden, "forbidden", "")
		want := `Bearer error="insufficient_scope", scope="` + rc.scope + `"`
		if got := r.Header.Get("WWW-Authenticate"); got != want {
			t.Errorf("%s without %s: WWW-Authenticate %q, want %q", route, rc.scope, got, want)
		}
		if n := a.eventCount(t); n != before {
			t.Errorf("%s: %d events appended by refused requests", route, n-before)
		}
	})
}

// TestIdempotencyKeysBelongToTheirPrincipal: the same key on two spellings of
// one account's path runs once; the same key from another principal is that
// principal's own.
func TestIdempotencyKeysBelongToTheirPrincipal(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	olivia, ivan := a.bearer("olivia", "bank:read bank:write"), a.bearer("ivan", "bank:read bank:write")
	id := mustOpen(t, a, map[string]any{}, olivia...)["id"].(string)
	key := func(h []string) []string { return append([]string{"Idempotency-Key", "k-1"}, h...) }

	first := a.do("POST", "/accounts/"+strings.ToUpper(id)+"/deposit", map[string]any{"amount": "1.00"}, key(olivia)...)
	second := a.do("POST", "/accounts/"+id+"/deposit", map[string]any{"amount": "1.00"}, key(olivia)...)
	if first.StatusCode != http.StatusOK || second.StatusCode != http.StatusOK || string(first.Body) != string(second.Body) {
		t.Fatalf("upper then lower case path: %d %s / %d %s; want one deposit replayed", first.StatusCode, first.Body, second.StatusCode, second.Body)
	}
	if second.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the lower-case retry was not a replay")
	}
	if v := second.JSON(t)["version"]; v != float64(2) {
		t.Errorf("version %v after one deposit, want 2", v)
	}

	// Ivan's key k-1 is his: his own account's deposit runs, nothing of
	// Olivia's answer is replayed to him.
	theirs := mustOpen(t, a, map[string]any{}, ivan...)["id"].(string)
	r := a.do("POST", "/accounts/"+theirs+"/deposit", map[string]any{"amount": "2.00"}, key(ivan)...)
	if r.StatusCode != http.StatusOK || r.Header.Get("Idempotent-Replayed") != "" || r.JSON(t)["id"] != theirs {
		t.Errorf("ivan's k-1: %d %s; want his own deposit", r.StatusCode, r.Body)
	}
	// And Ivan claiming k-1 on Olivia's path first claims nothing of hers.
	r = a.do("POST", "/accounts/"+id+"/deposit", map[string]any{"amount": "1.00"}, key(ivan)...)
	expectProblem(t, r, http.StatusNotFound, "account_not_found", "")
}
