package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/auth"
	"github.com/evbank/bank/internal/auth/authtest"
	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/httpapi"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/projection"
	"github.com/evbank/bank/internal/query"
	"github.com/evbank/bank/internal/store"
	"github.com/evbank/bank/internal/telemetry"
)

// benchAPI is the production wiring of cmd/api in-process: the real router,
// JWT verifier (over a JWKS file), command cache, metrics and a JSON logger at info level
// writing to io.Discard, over a migrated test database. Requests go straight
// to the router through httptest.NewRecorder, so the figures are the api's
// own work plus the database round trips, without the network.
type benchAPI struct {
	router http.Handler
	token  string
	acct   string // an account of benchOwner's, opened and projected
}

const benchOwner = "bench-user"

func newBenchAPI(b *testing.B) *benchAPI {
	b.Helper()
	url := pgtest.NewDatabase(b)
	pool := pgtest.NewPool(b, url)
	events := store.NewEventStore(pool, store.Options{DefaultCurrency: domain.MustCurrency("USD"), SnapshotEvery: 100})
	iss := authtest.New(b)
	log, err := telemetry.NewLogger(io.Discard, "info", "json", "api")
	if err != nil {
		b.Fatal(err)
	}
	reg := telemetry.NewRegistry()
	commands := command.NewService(events, command.Config{
		DefaultCurrency: domain.MustCurrency("USD"), CacheSize: command.DefaultCacheSize, Observer: telemetry.NewCommandMetrics(reg),
	})
	router := httpapi.NewRouter(httpapi.Deps{
		Commands:       commands,
		Events:         events,
		EventLog:       events,
		Queries:        query.New(pool),
		Ready:          func(ctx context.Context) error { return pool.Ping(ctx) },
		Metrics:        telemetry.Handler(reg),
		HTTPObs:        telemetry.NewHTTPMetrics(reg),
		Log:            log,
		Auth:           newBenchVerifier(b, iss),
		RequestTimeout: 10 * time.Second,
	})
	a := &benchAPI{router: router, token: iss.TokenFor(benchOwner, "bank:read bank:write")}

	rec := a.serve(http.MethodPost, "/accounts", `{"currency":"USD","initial_deposit":"100.00"}`)
	if rec.Code != http.StatusCreated {
		b.Fatalf("open account: %d %s", rec.Code, rec.Body)
	}
	var st struct{ ID string }
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		b.Fatal(err)
	}
	a.acct = st.ID
	runner, err := projection.NewRunner(events.Tailer(), pool, projection.Options{Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runner.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	return a
}

// reportCPU reports, as cpu-ns/op, the CPU time this process (user and
// system) spent per iteration: the api's own CPU, which wall time hides
// behind PostgreSQL's round trips and a shared machine's noise. Call it once
// the setup is done and defer what it returns.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newBenchVerifier is the JWT verifier as cmd/api configures it, over iss's
// JWKS file.
func newBenchVerifier(b *testing.B, iss *authtest.Issuer) *auth.Verifier {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	v, err := auth.NewVerifier(ctx, auth.VerifierConfig{
		JWKSFile: iss.File(), Issuer: iss.Issuer, Audience: iss.Audience, Leeway: 30 * time.Second,
		JWKSFileCheckEvery: time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// serve sends one request as a client of make bench would: bearer token,
// JSON body.
func (a *benchAPI) serve(method, path, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	a.router.ServeHTTP(rec, req)
	return rec
}

// BenchmarkDepositRequest is one POST /accounts/{id}/deposit through the
// whole router: request id, access log, metrics, token check (cached), scope,
// strict body decoding, the command (load, decide, append) and the encoded
// answer. The database round trips dominate ns/op; allocs/op and a CPU
// profile outside pgx are the api's own cost.
func BenchmarkDepositRequest(b *testing.B) {
	a := newBenchAPI(b)
	path := "/accounts/" + a.acct + "/deposit"
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if rec := a.serve(http.MethodPost, path, `{"amount":"1.00","description":"bench"}`); rec.Code != http.StatusOK {
			b.Fatalf("deposit: %d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkGetAccountRequest is one GET /accounts/{id} through the whole
// router, answered from the read model.
func BenchmarkGetAccountRequest(b *testing.B) {
	a := newBenchAPI(b)
	path := "/accounts/" + a.acct
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if rec := a.serve(http.MethodGet, path, ""); rec.Code != http.StatusOK {
			b.Fatalf("get account: %d %s", rec.Code, rec.Body)
		}
	}
}
