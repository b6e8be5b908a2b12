package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evbank/bank/internal/auth"
	"github.com/evbank/bank/internal/auth/authtest"
	"github.com/evbank/bank/internal/httpapi"
)

// The authentication tests run the real router with the production verifier
// (DESIGN §6): every token failure is a 401 that changes nothing.

const invalidTokenChallenge = `Bearer realm="bank", error="invalid_token"`

// expectUnauthorized checks a 401 for a refused token: the challenge, the
// code, a detail that names the failed check and does not echo the token.
func expectUnauthorized(t *testing.T, r response, challenge, reason, token string) {
	t.Helper()
	expectProblem(t, r, http.StatusUnauthorized, "unauthorized", "")
	if got := r.Header.Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate = %q, want %q", got, challenge)
	}
	detail, _ := r.JSON(t)["detail"].(string)
	if !strings.Contains(detail, reason) {
		t.Errorf("detail %q does not name %q", detail, reason)
	}
	if token != "" && strings.Contains(string(r.Body), token) {
		t.Error("the problem echoes the token")
	}
}

func TestTokenFailures(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	iss := a.iss
	rsaKey := iss.AddKey("RS256")
	edKey := iss.AddKey("EdDSA")
	stranger := iss.NewKey("ES256") // never published
	claims := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}

	// The refusals first, all at once; then the acceptances, which append,
	// so that the refusals' event counts compare.
	t.Run("refused", func(t *testing.T) {
		now := time.Now()
		for _, tc := range []struct {
			name   string
			header string // the Authorization header
			reason string
		}{
			{"not a JWT", "Bearer not-a-jwt", "malformed token"},
			{"three garbage segments", "Bearer a.b.c", "malformed token"},
			{"another scheme", "Basic YWxpY2U6c2VjcmV0", "not a Bearer token"},
			{"bad signature", "Bearer " + iss.Sign(authtest.Token{Key: stranger, KID: iss.Key().KID}), "signature does not verify"},
			{"unknown kid", "Bearer " + iss.Sign(authtest.Token{Key: stranger}), "unknown signing key"},
			{"wrong iss", "Bearer " + iss.Sign(authtest.Token{Claims: claims("iss", "https://evil.test")}), "wrong issuer"},
			{"wrong aud", "Bearer " + iss.Sign(authtest.Token{Claims: claims("aud", "another-service")}), "wrong audience"},
			{"expired beyond the leeway", "Bearer " + iss.Sign(authtest.Token{Claims: claims("exp", now.Add(-2*time.Minute))}), "expired"},
			{"nbf in the future", "Bearer " + iss.Sign(authtest.Token{Claims: claims("nbf", now.Add(5*time.Minute))}), "not valid yet"},
			{"no exp", "Bearer " + iss.Sign(authtest.Token{Claims: claims("exp", nil)}), "no expiry"},
			{"no sub", "Bearer " + iss.Sign(authtest.Token{Claims: claims("sub", nil)}), "no subject"},
			{"alg none", "Bearer " + iss.Sign(authtest.Token{Alg: "none"}), "algorithm not allowed"},
			{"HS256 keyed with the RSA public key", "Bearer " + iss.Sign(authtest.Token{Key: rsaKey, Alg: "HS256", HMACSecret: rsaKey.PublicPEM()}), "algorithm not allowed"},
			{"RS256 header on the EC key", "Bearer " + iss.Sign(authtest.Token{Key: rsaKey, KID: iss.Key().KID}), "does not match the key"},
			{"PS256 on the RSA key", "Bearer " + iss.Sign(authtest.Token{Key: rsaKey, Alg: "PS256"}), "algorithm not allowed"},
			{"EdDSA header on the RSA key", "Bearer " + iss.Sign(authtest.Token{Key: edKey, KID: rsaKey.KID}), "does not match the key"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				a := a.as(t)
				before := a.eventCount(t)
				r := a.do("POST", "/accounts", map[string]any{"owner_id": "alice"}, "Authorization", tc.header)
				token, _ := strings.CutPrefix(tc.header, "Bearer ")
				expectUnauthorized(t, r, invalidTokenChallenge, tc.reason, token)
				// Reads are refused alike.
				r = a.do("GET", "/accounts", nil, "Authorization", tc.header)
				expectUnauthorized(t, r, invalidTokenChallenge, tc.reason, token)
				if after := a.eventCount(t); after != before {
					t.Errorf("%d events appended by a refused request", after-before)
				}
			})
		}
		t.Run("no Authorization header", func(t *testing.T) {
			t.Parallel()
			a := a.as(t)
			before := a.eventCount(t)
			r := a.do("POST", "/accounts", map[string]any{"owner_id": "alice"}, "Authorization", "<delete>")
			expectUnauthorized(t, r, `Bearer realm="bank"`, "needs an Authorization: Bearer token", "")
			if after := a.eventCount(t); after != before {
				t.Errorf("%d events appended by a request without a token", after-before)
			}
		})
	})

	for _, tc := range []struct {
		name string
		tok  func() authtest.Token // signed when the subtest runs: the leeway case depends on the clock
	}{
		{"ES256", func() authtest.Token { return authtest.Token{} }},
		{"RS256", func() authtest.Token { return authtest.Token{Key: rsaKey} }},
		{"EdDSA", func() authtest.Token { return authtest.Token{Key: edKey} }},
		{"expired within the leeway", func() authtest.Token {
			return authtest.Token{Claims: claims("exp", time.Now().Add(-5*time.Second))}
		}},
	} {
		// Not parallel: these run before the refusals above start, which
		// count the events of the whole database.
		t.Run("accepted/"+tc.name, func(t *testing.T) {
			a := a.as(t)
			r := a.do("POST", "/accounts", map[string]any{"owner_id": "alice"}, "Authorization", "Bearer "+iss.Sign(tc.tok()))
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("open with a %s token: %d %s", tc.name, r.StatusCode, r.Body)
			}
		})
	}
}

// TestKeyRotationThroughTheRouter: a token from a key the JWKS did not have
// is refused, then accepted once the key is published, from a file and from
// a URL (whose refresh on an unknown kid is rate-limited, here to 100 ms).
func TestKeyRotationThroughTheRouter(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	byURL, err := auth.NewVerifier(ctx, auth.VerifierConfig{
		JWKSURL: a.iss.URL(), Issuer: a.iss.Issuer, Audience: a.iss.Audience, Leeway: 30 * time.Second,
		UnknownKIDEvery: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	viaURL := a.sibling(func(d *httpapi.Deps) { d.Auth = byURL })

	for _, api := range []struct {
		name string
		a    *testAPI
	}{{"file", a}, {"url", viaURL}} {
		next := a.iss.NewKey("RS256")
		tok := "Bearer " + a.iss.Sign(authtest.Token{Key: next, Claims: map[string]any{"scope": "bank:read"}})
		r := api.a.do("GET", "/accounts", nil, "Authorization", tok)
		expectUnauthorized(t, r, invalidTokenChallenge, "unknown signing key", "")
		a.iss.Publish(next)
		if api.name == "url" {
			time.Sleep(150 * time.Millisecond) // the refresh above spent this interval's
		}
		if r := api.a.do("GET", "/accounts", nil, "Authorization", tok); r.StatusCode != http.StatusOK {
			t.Errorf("%s: after rotation: %d %s", api.name, r.StatusCode, r.Body)
		}
	}
}

func TestMissingScope(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	id := mustOpen(t, a, map[string]any{"owner_id": "reader"})["id"].(string)
	reader := a.asPrincipal("reader", "bank:read")
	writer := a.asPrincipal("writer", "bank:write")
	none := a.asPrincipal("nobody", "openid profile")
	before := a.eventCount(t)
	for _, tc := range []struct {
		a            *testAPI
		method, path string
		body         any
		scope        string
	}{
		{reader, "POST", "/accounts", map[string]any{"owner_id": "reader"}, "bank:write"},
		{reader, "POST", "/accounts/" + id + "/deposit", map[string]any{"amount": "1.00"}, "bank:write"},
		{writer, "GET", "/accounts/" + id, nil, "bank:read"},
		{none, "GET", "/accounts", nil, "bank:read"},
		{reader, "GET", "/summary", nil, "bank:admin"},
		{writer, "GET", "/summary", nil, "bank:admin"},
	} {
		r := tc.a.as(t).do(tc.method, tc.path, tc.body)
		expectProblem(t, r, http.StatusForbidden, "forbidden", "")
		want := `Bearer error="insufficient_scope", scope="` + tc.scope + `"`
		if got := r.Header.Get("WWW-Authenticate"); got != want {
			t.Errorf("%s %s: WWW-Authenticate = %q, want %q", tc.method, tc.path, got, want)
		}
	}
	if after := a.eventCount(t); after != before {
		t.Errorf("%d events appended without the scope", after-before)
	}
	// The operational endpoints need no token at all.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := a.do("GET", path, nil, "Authorization", "<delete>"); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d", path, r.StatusCode)
		}
	}
}

func TestAuthModeNone(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, func(d *httpapi.Deps) { d.Auth = auth.None{} })
	r := a.do("GET", "/summary", nil, "Authorization", "<delete>")
	if r.StatusCode != http.StatusOK {
		t.Errorf("AUTH_MODE=none: GET /summary without a token: %d %s", r.StatusCode, r.Body)
	}
}

// TestRateLimitPerPrincipal: alice over her rate gets 429 with Retry-After
// and the RateLimit headers; bob, at the same time, is not limited.
func TestRateLimitPerPrincipal(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, func(d *httpapi.Deps) { d.RateLimit = httpapi.RateLimit{PerSecond: 0.1, Burst: 2} })
	alice := a.asPrincipal("alice", "bank:read bank:write")
	bob := a.asPrincipal("bob", "bank:read")

	for i, wantRemaining := range []string{"1", "0"} {
		r := alice.do("GET", "/accounts", nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("alice's request %d: %d %s", i+1, r.StatusCode, r.Body)
		}
		if got := r.Header.Get("RateLimit-Limit"); got != "2" {
			t.Errorf("RateLimit-Limit = %q, want 2", got)
		}
		if got := r.Header.Get("RateLimit-Remaining"); got != wantRemaining {
			t.Errorf("request %d: RateLimit-Remaining = %q, want %s", i+1, got, wantRemaining)
		}
		if reset, err := strconv.Atoi(r.Header.Get("RateLimit-Reset")); err != nil || reset < 1 || reset > 20 {
			t.Errorf("request %d: RateLimit-Reset = %q, want 1-20 s at 0.1/s", i+1, r.Header.Get("RateLimit-Reset"))
		}
	}
	before := a.eventCount(t)
	r := alice.do("POST", "/accounts", map[string]any{"owner_id": "alice"})
	expectProblem(t, r, http.StatusTooManyRequests, "rate_limited", "")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 10 {
		t.Errorf("Retry-After = %q, want 1-10 s at 0.1/s", r.Header.Get("Retry-After"))
	}
	if r.Header.Get("RateLimit-Remaining") != "0" || r.Header.Get("RateLimit-Limit") != "2" || r.Header.Get("RateLimit-Reset") == "" {
		t.Errorf("429 RateLimit headers: %v", r.Header)
	}
	if after := a.eventCount(t); after != before {
		t.Error("a rate-limited command was applied")
	}

	// Another principal has a bucket of its own.
	for i := range 2 {
		if r := bob.do("GET", "/accounts", nil); r.StatusCode != http.StatusOK {
			t.Errorf("bob's request %d while alice is limited: %d %s", i+1, r.StatusCode, r.Body)
		}
	}
	// Without a token there is no principal: 401, not 429.
	if r := a.do("GET", "/accounts", nil, "Authorization", "<delete>"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", r.StatusCode)
	}
	// Off by default: no headers.
	plain := newTestAPI(t)
	if r := plain.do("GET", "/accounts", nil); r.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("RateLimit-Limit %q without RATE_LIMIT", r.Header.Get("RateLimit-Limit"))
	}
}

// TestRequestTimeout: every request's context has REQUEST_TIMEOUT's deadline,
// and database work past it is cancelled: 503 timeout, nothing appended.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	var left time.Duration
	a := newTestAPI(t, func(d *httpapi.Deps) {
		d.RequestTimeout = 3 * time.Second
		d.Ready = func(ctx context.Context) error {
			if dl, ok := ctx.Deadline(); ok {
				left = time.Until(dl)
			}
			return nil
		}
	})
	if r := a.do("GET", "/readyz", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %d", r.StatusCode)
	}
	if left <= 0 || left > 3*time.Second {
		t.Errorf("the request's deadline was %v away, want within REQUEST_TIMEOUT (3s)", left)
	}

	expired := a.sibling(func(d *httpapi.Deps) { d.RequestTimeout = time.Nanosecond })
	before := a.eventCount(t)
	r := expired.do("POST", "/accounts", map[string]any{"owner_id": "alice"})
	expectProblem(t, r, http.StatusServiceUnavailable, "timeout", "")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 timeout without Retry-After")
	}
	if after := a.eventCount(t); after != before {
		t.Error("a command past its deadline was applied")
	}
}
