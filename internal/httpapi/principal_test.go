package httpapi_test

import (
	"context"
	"strings"

	"github.com/evbank/bank/internal/auth"
)

// TEMPORARY until the JWT verifier lands: tokens "test:<sub>:<scopes>".
type testTokens struct{}

func (testTokens) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	if token == "" {
		return auth.Anonymous, nil
	}
	if token == "none" {
		return auth.Principal{}, auth.ErrNoToken
	}
	parts := strings.SplitN(token, ":", 3)
	if len(parts) != 3 || parts[0] != "test" {
		return auth.Principal{}, &auth.Error{Reason: "malformed"}
	}
	return auth.Principal{Subject: parts[1], Scopes: auth.ParseScopes(parts[2])}, nil
}

// bearer is the header pair that makes a request come from sub with scopes.
func (a *testAPI) bearer(sub, scopes string) []string {
	return []string{"Authorization", "Bearer test:" + sub + ":" + scopes}
}

// noToken is the header pair that sends a request without a token.
func (a *testAPI) noToken() []string { return []string{"Authorization", "Bearer none"} }
