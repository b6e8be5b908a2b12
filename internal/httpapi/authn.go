package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/evbank/bank/internal/auth"
)

// authenticate puts the caller's principal in the request's context, or
// answers 401. The problem's detail says which check failed, never the token.
func authenticate(a auth.Authenticator) func(http.Handler) http.Handler {
	if a == nil {
		a = denyAll{}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, err := bearerToken(r)
			if err != nil {
				writeProblem(w, r, err)
				return
			}
			p, err := a.Authenticate(r.Context(), token)
			if err != nil {
				writeProblem(w, r, unauthorized(err))
				return
			}
			if st := stateOf(r); st != nil {
				// Kept in the request's state rather than in a new context
				// (and so a new copy of the request).
				st.principal, st.authed = p, true
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), p)))
		})
	}
}

// bearerToken reads Authorization: Bearer <token> (RFC 6750 §2.1; the scheme
// is case-insensitive). No header gives "" (the authenticator decides whether
// that is allowed); any other scheme or a second header is an invalid token.
func bearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", unauthorized(&auth.Error{Reason: "more than one Authorization header"})
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", unauthorized(&auth.Error{Reason: "the Authorization header is not a Bearer token"})
	}
	return token, nil
}

// unauthorized is the 401 problem for err, with the WWW-Authenticate form of
// RFC 6750 §3: error="invalid_token" only when a token was sent.
func unauthorized(err error) *Problem {
	if errors.Is(err, auth.ErrNoToken) {
		p := newProblem(http.StatusUnauthorized, "unauthorized", "this request needs an Authorization: Bearer token")
		p.wwwAuthenticate = `Bearer realm="bank"`
		return p
	}
	detail := "the bearer token is not valid"
	var aerr *auth.Error
	if errors.As(err, &aerr) {
		detail = "the bearer token is not valid: " + aerr.Reason
	}
	p := newProblem(http.StatusUnauthorized, "unauthorized", detail)
	p.wwwAuthenticate = `Bearer realm="bank", error="invalid_token"`
	return p
}

// requireScope answers 403 unless the principal holds scope s.
func requireScope(s auth.Scope) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !principal(r).Has(s) {
				writeProblem(w, r, insufficientScope(s))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func insufficientScope(s auth.Scope) *Problem {
	p := newProblem(http.StatusForbidden, "forbidden", "the token lacks the "+s.String()+" scope")
	p.wwwAuthenticate = `Bearer error="insufficient_scope", scope="` + s.String() + `"`
	return p
}

// forbidden is the 403 of a request the principal's scopes allow but whose
// target is not its to name (another owner_id).
func forbidden(detail string) *Problem {
	return newProblem(http.StatusForbidden, "forbidden", detail)
}

// principal is the request's caller; routes behind authenticate always have one.
func principal(r *http.Request) auth.Principal {
	if st := stateOf(r); st != nil && st.authed {
		return st.principal
	}
	p, _ := auth.FromContext(r.Context())
	return p
}

// denyAll stands in for a missing authenticator: fail closed.
type denyAll struct{}

func (denyAll) Authenticate(context.Context, string) (auth.Principal, error) {
	return auth.Principal{}, &auth.Error{Reason: "the server has no token verifier configured"}
}

// mayAccess answers errAccountNotFound unless the request's principal may see
// an account owned by owner: another owner's account is answered exactly as
// an unknown one, so that account ids leak nothing (DESIGN §6).
func mayAccess(r *http.Request, owner string) error {
	if !principal(r).MayAccess(owner) {
		return errAccountNotFound
	}
	return nil
}

// ownerFilter is the owner a query is restricted to: "" (any) for an admin,
// else the principal itself.
func ownerFilter(r *http.Request) string {
	if p := principal(r); !p.IsAdmin() {
		return p.Subject
	}
	return ""
}
