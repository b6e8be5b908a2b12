// Package auth knows who is calling: the principal a verified bearer token
// names and the scopes it grants (DESIGN §6). It decides nothing about
// accounts beyond the one ownership rule every route applies (MayAccess).
//
// Tokens are verified by Verifier with github.com/golang-jwt/jwt/v5 (parsing,
// signatures, the registered claims with leeway) over a key set kept by
// github.com/MicahParks/jwkset (the JWKS store behind keyfunc v3: JWKS
// parsing for RSA, EC and OKP keys, background refresh, a rate-limited
// refresh on an unknown kid). Chosen over lestrrat-go/jwx v3 because the
// pieces are small and each does one thing: the parser's claim checks map one
// to one onto DESIGN §6, and the key lookup stays in our own keyfunc, where
// the algorithm allow-list and the key-type check happen before any signature
// is looked at (jwx infers or trusts the JWK's alg in ways that take more
// options to pin down). keyfunc v3's own Keyfunc is not used: it accepts any
// alg the JWK does not name, leaving the HMAC-with-a-public-key and
// alg/key-type mismatches to the signature step, where they would be
// reported as a bad signature.
package auth

import (
	"context"
	"errors"
	"strings"
)

// Scope is one permission a token may grant.
type Scope uint8

// The scopes of DESIGN §6. Admin implies Read and Write.
const (
	ScopeRead Scope = 1 << iota
	ScopeWrite
	ScopeAdmin
)

// String is the scope as it appears in a token's scope claim.
func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "bank:read"
	case ScopeWrite:
		return "bank:write"
	case ScopeAdmin:
		return "bank:admin"
	}
	return "unknown"
}

// ParseScopes reads a space-separated scope claim; names it does not know are
// ignored (a token may carry scopes for other services).
func ParseScopes(claim string) Scope {
	var s Scope
	for _, name := range strings.Fields(claim) {
		switch name {
		case "bank:read":
			s |= ScopeRead
		case "bank:write":
			s |= ScopeWrite
		case "bank:admin":
			s |= ScopeAdmin | ScopeRead | ScopeWrite
		}
	}
	return s
}

// Principal is the caller a verified token names.
type Principal struct {
	// Subject is the token's sub: the owner_id of the accounts it opens.
	Subject string
	Scopes  Scope
}

// Anonymous is the principal of every request when AUTH_MODE=none: an admin.
var Anonymous = Principal{Subject: "anonymous", Scopes: ScopeAdmin | ScopeRead | ScopeWrite}

// Has reports whether the principal holds scope s (admin holds every scope).
func (p Principal) Has(s Scope) bool { return p.Scopes&s == s || p.Scopes&ScopeAdmin != 0 }

// IsAdmin reports whether the principal may act on every account.
func (p Principal) IsAdmin() bool { return p.Scopes&ScopeAdmin != 0 }

// MayAccess reports whether the principal may read or command an account
// owned by ownerID: its own accounts, or any account for an admin.
func (p Principal) MayAccess(ownerID string) bool { return p.IsAdmin() || p.Subject == ownerID }

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal the authentication middleware put in ctx;
// ok is false when there is none (a route that needs no token).
func FromContext(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Authenticator turns a bearer token into a principal. Its errors are
// *Error values saying which check failed, never the token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// Error is a token that failed verification; Reason is a few words for the
// problem's detail (never the token itself).
type Error struct{ Reason string }

func (e *Error) Error() string { return "invalid token: " + e.Reason }

// None is the authenticator of AUTH_MODE=none: every request, with or without
// a token, is the Anonymous admin.
type None struct{}

// Authenticate always answers Anonymous.
func (None) Authenticate(context.Context, string) (Principal, error) { return Anonymous, nil }

// ErrNoToken is what an Authenticator returns for a request that sent no
// bearer token at all (token "").
var ErrNoToken = errors.New("no bearer token")
