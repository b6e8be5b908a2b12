package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/evbank/bank/internal/auth"
	"github.com/evbank/bank/internal/auth/authtest"
)

// TestJWKSFileCheckEvery: with an interval, a key published later is
// accepted at once (its unknown kid checks the file), and a withdrawn key
// is refused once the interval has passed, not necessarily before.
func TestJWKSFileCheckEvery(t *testing.T) {
	t.Parallel()
	const every = 2 * time.Second
	iss := authtest.New(t)
	v := newVerifier(t, iss, func(c *auth.VerifierConfig) { c.JWKSFileCheckEvery = every })
	ctx := context.Background()
	next := iss.NewKey("EdDSA")
	tok := iss.Sign(authtest.Token{Key: next})
	if got := reasonOf(t, mustFail(v.Authenticate(ctx, tok))); got != "unknown signing key" {
		t.Fatalf("before publication: reason %q", got)
	}
	iss.Publish(next)
	if _, err := v.Authenticate(ctx, tok); err != nil {
		t.Fatalf("right after publication: %v", err)
	}
	iss.Withdraw(next.KID)
	withdrawn := time.Now()
	if _, err := v.Authenticate(ctx, tok); err != nil && time.Since(withdrawn) < every/2 {
		t.Fatalf("refused within the interval, before any check was due: %v", err)
	}
	time.Sleep(every + 100*time.Millisecond)
	if got := reasonOf(t, mustFail(v.Authenticate(ctx, tok))); got != "unknown signing key" {
		t.Fatalf("after the interval: reason %q", got)
	}
}
