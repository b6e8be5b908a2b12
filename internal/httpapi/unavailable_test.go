package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/evbank/bank/internal/auth/authtest"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/httpapi"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

// TestDatabaseStopped: with PostgreSQL stopped under a running api, every
// command and query answers 503 unavailable with Retry-After (DESIGN §2),
// never a bare 500, and neither the problems nor /readyz tell the client the
// server's address or the driver's words.
func TestDatabaseStopped(t *testing.T) {
	t.Parallel()
	url, stop := pgtest.StoppableServer(t)
	pool := pgtest.NewPool(t, url)
	events := store.NewEventStore(pool, store.Options{DefaultCurrency: domain.MustCurrency("USD"), SnapshotEvery: 100})
	a := &testAPI{t: t, dbURL: url, pool: pool, read: pool, events: events, iss: authtest.New(t)}
	a.token = a.tokenFor(adminSubject, "bank:admin")
	a.serve()

	id := mustOpen(t, a, map[string]any{"owner_id": "down", "initial_deposit": "5.00"})["id"].(string)
	if r := a.do("GET", "/readyz", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("/readyz before the stop: %d %s", r.StatusCode, r.Body)
	}
	stop()

	port := strconv.Itoa(int(pool.Config().ConnConfig.Port))
	leaks := []string{port, "127.0.0.1", "postgres", "dial", "connect", "refused", "SQLSTATE"}
	checkNoLeak := func(t *testing.T, r response) {
		t.Helper()
		for _, leak := range leaks {
			if strings.Contains(string(r.Body), leak) {
				t.Errorf("the answer tells the client %q: %s", leak, r.Body)
			}
		}
	}
	requests := []struct {
		method, path string
		body         any
	}{
		{"POST", "/accounts", map[string]any{"owner_id": "x"}},
		{"POST", "/accounts/" + id + "/deposit", map[string]any{"amount": "1.00"}},
		{"POST", "/accounts/" + id + "/withdraw", map[string]any{"amount": "1.00"}},
		{"POST", "/accounts/" + id + "/close", nil},
		{"GET", "/accounts/" + id, nil},
		{"GET", "/accounts/" + id + "?as_of=2030-01-01T00:00:00Z", nil},
		{"GET", "/accounts/" + id + "?min_version=1", nil},
		{"GET", "/accounts?owner_id=down", nil},
		{"GET", "/accounts/" + id + "/transactions", nil},
		{"GET", "/accounts/" + id + "/daily-summaries", nil},
		{"GET", "/accounts/" + id + "/events", nil},
		{"GET", "/summary", nil},
	}
	for _, req := range requests {
		t.Run(req.method+" "+req.path, func(t *testing.T) {
			header := []string{"Idempotency-Key", "k-" + req.path}
			if req.method == "GET" {
				header = nil
			}
			r := a.as(t).do(req.method, req.path, req.body, header...)
			expectProblem(t, r, http.StatusServiceUnavailable, "unavailable", "")
			if r.Header.Get("Retry-After") == "" {
				t.Error("503 unavailable without Retry-After")
			}
			checkNoLeak(t, r)
		})
	}

	r := a.do("GET", "/readyz", nil)
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database stopped: %d %s", r.StatusCode, r.Body)
	}
	if got := r.JSON(t)["reason"]; got != "database unreachable" {
		t.Errorf("/readyz reason %q, want %q", got, "database unreachable")
	}
	checkNoLeak(t, r)
}

// TestReadyzWordsOnly: whatever error the readiness check returns, /readyz
// shows only its words, never the error's text.
func TestReadyzWordsOnly(t *testing.T) {
	t.Parallel()
	secret := errors.New(`failed to connect to user=bank database=bank: 10.1.2.3:5432 (db.internal): dial error: password=hunter2`)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&httpapi.NotReadyError{Reason: "read model schema at version 1, want 2", Err: secret}, "read model schema at version 1, want 2"},
		{secret, "not ready"},
	} {
		a := newTestAPI(t, func(d *httpapi.Deps) { d.Ready = func(context.Context) error { return tc.err } })
		r := a.do("GET", "/readyz", nil)
		if r.StatusCode != http.StatusServiceUnavailable || r.JSON(t)["reason"] != tc.want {
			t.Errorf("/readyz = %d %s, want 503 with reason %q", r.StatusCode, r.Body, tc.want)
		}
	}
}
