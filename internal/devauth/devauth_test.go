package devauth_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/evbank/bank/internal/auth"
	"github.com/evbank/bank/internal/devauth"
)

// TestKeyAndTokenSuitTheAPI: Ensure makes a private key only its owner may
// read and a public JWKS, keeps them on a second call, and the api's verifier
// accepts the tokens signed with it.
func TestKeyAndTokenSuitTheAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, files, err := devauth.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{files.Key: 0o600, files.JWKS: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	again, _, err := devauth.Ensure(dir)
	if err != nil || !again.Equal(key) {
		t.Fatalf("a second Ensure made another key (%v)", err)
	}

	v, err := auth.NewVerifier(context.Background(), auth.VerifierConfig{
		JWKSFile: files.JWKS, Issuer: devauth.Issuer, Audience: devauth.Audience, Leeway: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := devauth.Token(key, "alice", "bank:read bank:write", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Authenticate(context.Background(), tok)
	if err != nil || p.Subject != "alice" || !p.Has(auth.ScopeWrite) || p.IsAdmin() {
		t.Errorf("the api's verifier on a dev token: %+v, %v", p, err)
	}
}
