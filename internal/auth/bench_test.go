package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/evbank/bank/internal/auth"
	"github.com/evbank/bank/internal/auth/authtest"
)

// BenchmarkAuthenticate measures one request's token check: the same token
// again and again, with the verified-token cache (a SHA-256 and a map
// lookup, plus, for a JWKS file, the stat that notices a changed file) and
// without it (parse and signature check every time).
func BenchmarkAuthenticate(b *testing.B) {
	b.Run("ES256/cached-url", func(b *testing.B) {
		iss := authtest.New(b)
		tok := iss.Sign(authtest.Token{})
		v := newVerifier(b, iss, func(c *auth.VerifierConfig) { c.JWKSFile, c.JWKSURL = "", iss.URL() })
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Authenticate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		iss := authtest.New(b)
		key := iss.AddKey(alg)
		tok := iss.Sign(authtest.Token{Key: key})
		for _, mode := range []struct {
			name string
			size int
		}{{"cached", 0}, {"uncached", -1}} {
			b.Run(alg+"/"+mode.name, func(b *testing.B) {
				v := newVerifier(b, iss, func(c *auth.VerifierConfig) { c.CacheSize = mode.size })
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Authenticate(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAuthenticateFileCheckEvery is the cached case over a JWKS file
// checked at most once a second, as cmd/api runs it: no stat per request.
func BenchmarkAuthenticateFileCheckEvery(b *testing.B) {
	iss := authtest.New(b)
	tok := iss.Sign(authtest.Token{})
	v := newVerifier(b, iss, func(c *auth.VerifierConfig) { c.JWKSFileCheckEvery = time.Second })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
