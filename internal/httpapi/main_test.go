package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/auth"
	"github.com/evbank/bank/internal/auth/authtest"
	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/httpapi"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/query"
	"github.com/evbank/bank/internal/store"
	"github.com/evbank/bank/internal/telemetry"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testAPI is the real router over a fresh, migrated database, served by httptest.
// Every response it gets is validated against openapi.yaml (validateResponse).
// The read tables live in the same database (READ_DATABASE_URL defaults to
// DATABASE_URL).
//
// Every request carries a bearer token from the API's own issuer (iss): by
// default an admin's (adminSubject, bank:admin). To call as someone else, use
// a.asPrincipal("bob", "bank:read bank:write") for a copy whose requests carry
// bob's token, a.tokenFor for a token to put in a header yourself, or pass an
// "Authorization" header pair to do ("<delete>" sends none).
type testAPI struct {
	t      *testing.T
	srv    *httptest.Server
	router http.Handler
	dbURL  string
	pool   *pgxpool.Pool // the event store's database
	read   *pgxpool.Pool // the read tables' database (the same one here)
	events *store.EventStore
	iss    *authtest.Issuer // signs the tokens the router accepts
	token  string           // sent as Authorization: Bearer unless a header overrides it
}

// adminSubject is the principal of a testAPI's requests by default.
const adminSubject = "test-admin"

// newVerifier is the production JWT verifier over iss's JWKS file.
func newVerifier(t testing.TB, iss *authtest.Issuer) *auth.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := auth.NewVerifier(ctx, auth.VerifierConfig{
		JWKSFile: iss.File(), Issuer: iss.Issuer, Audience: iss.Audience, Leeway: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// tokenFor is a valid token, from this API's issuer, for sub with the
// space-separated scopes (e.g. "bank:read bank:write").
func (a *testAPI) tokenFor(sub, scopes string) string {
	a.t.Helper()
	return a.iss.TokenFor(sub, scopes)
}

// asPrincipal returns a copy of a whose requests carry a token for sub with
// the space-separated scopes.
func (a *testAPI) asPrincipal(sub, scopes string) *testAPI {
	a.t.Helper()
	c := *a
	c.token = a.tokenFor(sub, scopes)
	return &c
}

// newTestAPI serves the production wiring over a new database; opts may change
// the router's dependencies before it is built.
func newTestAPI(t *testing.T, opts ...func(*httpapi.Deps)) *testAPI {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool := pgtest.NewPool(t, url)
	usd := domain.MustCurrency("USD")
	events := store.NewEventStore(pool, store.Options{DefaultCurrency: usd, SnapshotEvery: 100})
	iss := authtest.New(t)
	a := &testAPI{t: t, dbURL: url, pool: pool, read: pool, events: events, iss: iss}
	a.token = a.tokenFor(adminSubject, "bank:admin")
	a.serve(opts...)
	return a
}

// sibling is a second API process over the same database: its own command
// service (and so its own per-stream queues), router and server.
func (a *testAPI) sibling(opts ...func(*httpapi.Deps)) *testAPI {
	a.t.Helper()
	b := &testAPI{t: a.t, dbURL: a.dbURL, pool: a.pool, read: a.read, events: a.events, iss: a.iss, token: a.token}
	b.serve(opts...)
	return b
}

func (a *testAPI) serve(opts ...func(*httpapi.Deps)) {
	reg := telemetry.NewRegistry()
	deps := httpapi.Deps{
		Commands: command.NewService(a.events, command.Config{DefaultCurrency: domain.MustCurrency("USD")}),
		Events:   a.events,
		EventLog: a.events,
		Queries:  query.New(a.read),
		Ready:    func(ctx context.Context) error { return a.pool.Ping(ctx) },
		Metrics:  telemetry.Handler(reg),
		HTTPObs:  telemetry.NewHTTPMetrics(reg),
		Log:      zerolog.Nop(),
		Auth:     newVerifier(a.t, a.iss),
	}
	for _, o := range opts {
		o(&deps)
	}
	a.router = httpapi.NewRouter(deps)
	a.srv = httptest.NewServer(a.router)
	a.t.Cleanup(a.srv.Close)
	client := a.srv.Client()
	client.Timeout = 30 * time.Second
	if tr, ok := client.Transport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = 64
	}
}

// response is a finished request with its body read.
type response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body into a generic map.
func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// do sends a request; body is sent as is when a string or []byte, chunked when
// an io.Reader, else as JSON.
// header pairs are name, value, name, value...; the value "<delete>" removes a
// header (Content-Type, which do sets for any body). It fails the test on a
// transport error, so it must run on the test's goroutine: use try elsewhere.
func (a *testAPI) do(method, path string, body any, header ...string) response {
	a.t.Helper()
	r, err := a.try(method, path, body, header...)
	if err != nil {
		a.t.Fatal(err)
	}
	return r
}

// try is do for any goroutine: a transport error is returned, not fatal. The
// response is still validated against openapi.yaml (t.Errorf is goroutine-safe).
func (a *testAPI) try(method, path string, body any, header ...string) (response, error) {
	a.t.Helper()
	var (
		raw     []byte
		chunked bool
	)
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	case io.Reader:
		// Sent without a Content-Length (chunked).
		var err error
		if raw, err = io.ReadAll(b); err != nil {
			return response{}, err
		}
		chunked = true
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		raw = enc
	}
	var rd io.Reader
	switch {
	case chunked:
		rd = io.MultiReader(bytes.NewReader(raw)) // hides the length
	case body != nil:
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if len(header)%2 != 0 {
		return response{}, fmt.Errorf("odd header pairs %q", header)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "<delete>" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	validateResponse(a.t, req, raw, resp, data)
	return response{Response: resp, Body: data}, nil
}

// count runs a count(*) query on the test's database.
func (a *testAPI) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := a.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// eventCount is the number of events in the store, all streams together.
func (a *testAPI) eventCount(t testing.TB) int {
	t.Helper()
	return a.count(t, `SELECT count(*) FROM events`)
}

// as returns a copy of a that reports to t, for subtests.
func (a *testAPI) as(t *testing.T) *testAPI {
	c := *a
	c.t = t
	return &c
}
