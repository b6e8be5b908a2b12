package auth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evbank/bank/internal/auth"
	"github.com/evbank/bank/internal/auth/authtest"
	"github.com/evbank/bank/internal/testwait"
)

func newVerifier(t testing.TB, iss *authtest.Issuer, mod func(*auth.VerifierConfig)) *auth.Verifier {
	t.Helper()
	cfg := auth.VerifierConfig{
		JWKSFile: iss.File(),
		Issuer:   iss.Issuer,
		Audience: iss.Audience,
		Leeway:   30 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := auth.NewVerifier(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// reasonOf is the failed check a refusal names, "" for an acceptance.
func reasonOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var aerr *auth.Error
	if !errors.As(err, &aerr) {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	return aerr.Reason
}

func TestVerifierChecks(t *testing.T) {
	t.Parallel()
	iss := authtest.New(t)
	rsaKey := iss.AddKey("RS256")
	edKey := iss.AddKey("EdDSA")
	bare := iss.NewKey("ES256")
	bare.OmitAlg = true
	iss.Publish(bare)
	stranger := iss.NewKey("ES256") // never published
	// A fixed clock: the subtests run later than the table is built, and
	// the leeway cases must not depend on how much later.
	now := time.Now()
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) { c.Now = func() time.Time { return now } })

	for _, tc := range []struct {
		name   string
		tok    authtest.Token
		reason string // "" accepted
	}{
		{"ES256", authtest.Token{}, ""},
		{"RS256", authtest.Token{Key: rsaKey}, ""},
		{"EdDSA", authtest.Token{Key: edKey}, ""},
		{"no kid: every key of the alg is tried", authtest.Token{Key: rsaKey, NoKID: true}, ""},
		{"JWK without alg", authtest.Token{Key: bare}, ""},
		{"aud as a list", authtest.Token{Claims: map[string]any{"aud": []string{"other", "bank"}}}, ""},
		{"expired within leeway", authtest.Token{Claims: map[string]any{"exp": now.Add(-10 * time.Second)}}, ""},
		{"nbf within leeway", authtest.Token{Claims: map[string]any{"nbf": now.Add(10 * time.Second)}}, ""},
		{"expired", authtest.Token{Claims: map[string]any{"exp": now.Add(-time.Minute)}}, "expired"},
		{"nbf in the future", authtest.Token{Claims: map[string]any{"nbf": now.Add(time.Minute)}}, "not valid yet (nbf)"},
		{"iat in the future", authtest.Token{Claims: map[string]any{"iat": now.Add(time.Minute)}}, "issued in the future (iat)"},
		{"no exp", authtest.Token{Claims: map[string]any{"exp": nil}}, "no expiry (exp)"},
		{"wrong iss", authtest.Token{Claims: map[string]any{"iss": "https://evil.test"}}, "wrong issuer"},
		{"no iss", authtest.Token{Claims: map[string]any{"iss": nil}}, "wrong issuer"},
		{"wrong aud", authtest.Token{Claims: map[string]any{"aud": "other"}}, "wrong audience"},
		{"no sub", authtest.Token{Claims: map[string]any{"sub": nil}}, "no subject (sub)"},
		{"sub too long", authtest.Token{Claims: map[string]any{"sub": strings.Repeat("é", 129)}}, "subject longer than 128 characters"},
		{"unknown kid", authtest.Token{Key: stranger}, "unknown signing key"},
		{"signed by another key under a known kid", authtest.Token{Key: stranger, KID: iss.Key().KID}, "signature does not verify"},
		{"alg none", authtest.Token{Alg: "none"}, "signing algorithm not allowed (RS256, ES256 or EdDSA only)"},
		{"HS256 with the RSA public key", authtest.Token{Key: rsaKey, Alg: "HS256", HMACSecret: rsaKey.PublicPEM()}, "signing algorithm not allowed (RS256, ES256 or EdDSA only)"},
		{"PS256 on an RSA key", authtest.Token{Key: rsaKey, Alg: "PS256"}, "signing algorithm not allowed (RS256, ES256 or EdDSA only)"},
		{"RS256 header on an EC key", authtest.Token{Key: rsaKey, KID: iss.Key().KID}, "signing algorithm does not match the key"},
		{"RS256 header on an EC key without JWK alg", authtest.Token{Key: rsaKey, KID: bare.KID}, "signing algorithm does not match the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := iss.Sign(tc.tok)
			p, err := v.Authenticate(context.Background(), tok)
			if got := reasonOf(t, err); got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
			if err != nil && strings.Contains(err.Error(), tok) {
				t.Error("the error carries the token")
			}
			if err == nil && (p.Subject != "alice" || !p.Has(auth.ScopeWrite) || p.IsAdmin()) {
				t.Errorf("principal %+v", p)
			}
		})
	}

	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		for _, tok := range []string{"x", "a.b.c", "a.b", strings.Repeat("A", 100)} {
			if got := reasonOf(t, mustFail(v.Authenticate(context.Background(), tok))); got != "malformed token" {
				t.Errorf("%q: reason %q", tok, got)
			}
		}
	})
	t.Run("no token", func(t *testing.T) {
		t.Parallel()
		if _, err := v.Authenticate(context.Background(), ""); !errors.Is(err, auth.ErrNoToken) {
			t.Errorf("err = %v, want ErrNoToken", err)
		}
	})
	t.Run("scopes", func(t *testing.T) {
		t.Parallel()
		p, err := v.Authenticate(context.Background(), iss.TokenFor("root", "openid bank:admin"))
		if err != nil || p.Subject != "root" || !p.IsAdmin() || !p.Has(auth.ScopeRead) {
			t.Errorf("admin token: %+v, %v", p, err)
		}
		p, err = v.Authenticate(context.Background(), iss.TokenFor("bob", "bank:read"))
		if err != nil || p.Has(auth.ScopeWrite) || !p.Has(auth.ScopeRead) {
			t.Errorf("read token: %+v, %v", p, err)
		}
	})
}

func mustFail(_ auth.Principal, err error) error {
	if err == nil {
		return errors.New("accepted")
	}
	return err
}

func TestNewVerifierNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  auth.VerifierConfig
		want string
	}{
		{auth.VerifierConfig{}, "AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_URL or AUTH_JWKS_FILE"},
		{auth.VerifierConfig{Issuer: "i", JWKSFile: "f"}, "AUTH_AUDIENCE"},
		{auth.VerifierConfig{Issuer: "i", Audience: "a", JWKSFile: "f", JWKSURL: "http://x"}, "not both"},
		{auth.VerifierConfig{Issuer: "i", Audience: "a", JWKSFile: "/nonexistent/jwks.json"}, "AUTH_JWKS_FILE"},
		{auth.VerifierConfig{Issuer: "i", Audience: "a", JWKSURL: "http://127.0.0.1:1/jwks"}, "AUTH_JWKS_URL"},
		{auth.VerifierConfig{Issuer: "i", Audience: "a", JWKSFile: emptyJWKS(t)}, "no RS256, ES256 or EdDSA public key"},
	} {
		_, err := auth.NewVerifier(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want it to name %q", tc.cfg, err, tc.want)
		}
	}
}

func emptyJWKS(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBrokenJWKSFileKeepsTheKeys: a JWKS file rewritten with garbage (a
// half-written file, say) is reported once and the keys read before stay.
func TestBrokenJWKSFileKeepsTheKeys(t *testing.T) {
	t.Parallel()
	iss := authtest.New(t)
	var reports atomic.Int32
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) {
		c.CacheSize = -1
		c.OnRefreshError = func(error) { reports.Add(1) }
	})
	if err := os.WriteFile(iss.File(), []byte(`{"keys":[{"kty":`), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := v.Authenticate(context.Background(), iss.Sign(authtest.Token{})); err != nil {
			t.Fatalf("with a broken JWKS file: %v", err)
		}
	}
	if n := reports.Load(); n != 1 {
		t.Errorf("the broken file was reported %d times, want once", n)
	}
}

// TestKeyRotation: a token signed by a key that appears in the JWKS after the
// verifier started is accepted, from a file and from a URL.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	for _, source := range []string{"file", "url"} {
		t.Run(source, func(t *testing.T) {
			t.Parallel()
			iss := authtest.New(t)
			v := newVerifier(t, iss, func(c *auth.VerifierConfig) {
				if source == "url" {
					c.JWKSFile, c.JWKSURL = "", iss.URL()
					c.UnknownKIDEvery = 200 * time.Millisecond
				}
			})
			next := iss.NewKey("EdDSA")
			tok := iss.Sign(authtest.Token{Key: next})
			if got := reasonOf(t, mustFail(v.Authenticate(context.Background(), tok))); got != "unknown signing key" {
				t.Fatalf("before rotation: reason %q", got)
			}
			iss.Publish(next)
			if source == "url" {
				// The unknown kid above spent the refresh of this interval.
				time.Sleep(250 * time.Millisecond)
			}
			if _, err := v.Authenticate(context.Background(), tok); err != nil {
				t.Fatalf("after rotation: %v", err)
			}
			// Withdrawn: refused again, even though the token was cached.
			iss.Withdraw(next.KID)
			if source == "file" {
				if got := reasonOf(t, mustFail(v.Authenticate(context.Background(), tok))); got != "unknown signing key" {
					t.Fatalf("after withdrawal: reason %q", got)
				}
			}
		})
	}
}

// TestUnknownKIDRefreshIsRateLimited: made-up kids cause one JWKS fetch per
// interval, however many arrive, and are refused without waiting.
func TestUnknownKIDRefreshIsRateLimited(t *testing.T) {
	t.Parallel()
	iss := authtest.New(t)
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) { c.JWKSFile, c.JWKSURL = "", iss.URL() })
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	start := time.Now()
	for i := range 20 {
		tok := iss.Sign(authtest.Token{KID: "made-up-" + string(rune('a'+i))})
		if got := reasonOf(t, mustFail(v.Authenticate(context.Background(), tok))); got != "unknown signing key" {
			t.Fatalf("reason %q", got)
		}
	}
	if n := iss.Fetches(); n != 2 {
		t.Errorf("%d fetches after 20 unknown kids, want 2 (start + one refresh)", n)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("20 refusals took %v: they waited for the rate limiter", d)
	}
	// A known key still works meanwhile.
	if _, err := v.Authenticate(context.Background(), iss.Sign(authtest.Token{})); err != nil {
		t.Error(err)
	}
}

func TestBackgroundRefresh(t *testing.T) {
	t.Parallel()
	iss := authtest.New(t)
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) {
		c.JWKSFile, c.JWKSURL = "", iss.URL()
		c.RefreshEvery = 50 * time.Millisecond
		c.UnknownKIDEvery = time.Hour // only the background refresh may find the key
	})
	// Spend the one unknown-kid refresh.
	_, _ = v.Authenticate(context.Background(), iss.Sign(authtest.Token{KID: "nope"}))
	tok := iss.Sign(authtest.Token{Key: iss.AddKey("ES256")})
	testwait.Until(t, 5*time.Second, func() (bool, string) {
		_, err := v.Authenticate(context.Background(), tok)
		return err == nil, fmt.Sprintf("the background refresh has not picked up the new key: %v", err)
	})
}

func TestCacheExpiresWithTheToken(t *testing.T) {
	t.Parallel()
	iss := authtest.New(t)
	now := time.Now()
	clock := func() time.Time { return now }
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) { c.Now = clock; c.Leeway = 0 })
	tok := iss.Sign(authtest.Token{Claims: map[string]any{"iat": now.Add(-time.Minute), "exp": now.Add(time.Minute)}})
	if _, err := v.Authenticate(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if got := reasonOf(t, mustFail(v.Authenticate(context.Background(), tok))); got != "expired" {
		t.Errorf("a cached token past its exp: reason %q, want expired", got)
	}
}
