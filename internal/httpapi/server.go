// Package httpapi is the HTTP transport: chi routes, thin handlers that decode,
// call a command or query and encode, RFC 9457 problems and middleware.
package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	bank "github.com/evbank/bank"
	"github.com/evbank/bank/internal/apidocs"
	"github.com/evbank/bank/internal/auth"
	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/query"
)

var errAccountNotFound = domain.ErrAccountNotFound

// EventReader is what the audit trail and temporal reads need from the event store.
type EventReader interface {
	ReadStream(ctx context.Context, id uuid.UUID, afterVersion, limit int) ([]eventlog.RecordedEvent, error)
	// StreamHead is the account's owner and its stream's current version;
	// domain.ErrAccountNotFound when the stream does not exist.
	StreamHead(ctx context.Context, id uuid.UUID) (owner string, version int, err error)
	// LoadAsOf folds the stream up to asOf; domain.ErrAccountNotFound before the opening.
	LoadAsOf(ctx context.Context, id uuid.UUID, asOf time.Time) (*domain.Account, error)
}

// Deps are the handlers' collaborators.
type Deps struct {
	Commands *command.Service
	Events   EventReader
	// EventLog reads the whole event store for GET /events and GET /summary?as_of=.
	EventLog EventLog
	// Queries reads the projection tables (the read database).
	Queries *query.Store
	// MinVersionWait bounds how long a query with min_version waits for the
	// projection (MIN_VERSION_WAIT; 0 means 2 s).
	MinVersionWait time.Duration
	// Ready reports whether the service can serve: database reachable, schema current.
	Ready   func(ctx context.Context) error
	Metrics http.Handler
	HTTPObs HTTPObserver
	Log     zerolog.Logger
	// Auth verifies bearer tokens (DESIGN §6); auth.None{} is AUTH_MODE=none.
	// Required: a router without it would serve nobody.
	Auth auth.Authenticator
	// RateLimit limits each principal's requests (RATE_LIMIT); zero is off.
	RateLimit RateLimit
	// RequestTimeout is every request's deadline (REQUEST_TIMEOUT); 0 is none.
	RequestTimeout time.Duration
}

type handler struct {
	commands       *command.Service
	events         EventReader
	log            EventLog
	queries        *query.Store
	minVersionWait time.Duration
	ready          func(ctx context.Context) error
}

// NewRouter returns the API's routes with their middleware.
func NewRouter(d Deps) http.Handler {
	h := &handler{commands: d.Commands, events: d.Events, log: d.EventLog, queries: d.Queries, minVersionWait: d.MinVersionWait, ready: d.Ready}
	if h.minVersionWait <= 0 {
		h.minVersionWait = defaultMinVersionWait
	}
	r := chi.NewRouter()
	r.Use(begin(d.Log, d.RequestTimeout), accessLog(d.HTTPObs), recoverer, limitBody)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, newProblem(http.StatusNotFound, "not_found", "no resource at this path"))
	})
	r.MethodNotAllowed(methodNotAllowed(r))

	// Every route but the operational ones needs a token; each group names
	// the scope its routes need (DESIGN §6).
	r.Group(func(r chi.Router) {
		r.Use(authenticate(d.Auth), rateLimit(d.RateLimit))
		r.With(requireScope(auth.ScopeWrite)).Group(func(r chi.Router) {
			r.Post("/accounts", h.openAccount)
			r.Post("/accounts/{id}/deposit", h.deposit)
			r.Post("/accounts/{id}/withdraw", h.withdraw)
			r.Post("/accounts/{id}/close", h.closeAccount)
			r.Post("/transfers", h.createTransfer)
		})
		r.With(requireScope(auth.ScopeRead)).Group(func(r chi.Router) {
			r.Get("/accounts", h.listAccounts)
			r.Get("/accounts/{id}", h.getAccount)
			r.Get("/accounts/{id}/transactions", h.transactions)
			r.Get("/accounts/{id}/daily-summaries", h.dailySummaries)
			r.Get("/accounts/{id}/events", h.auditTrail)
			r.Get("/accounts/{id}/transfers", h.accountTransfers)
			r.Get("/transfers/{id}", h.getTransfer)
		})
		r.With(requireScope(auth.ScopeAdmin)).Group(func(r chi.Router) {
			r.Get("/summary", h.summary)
			r.Get("/events", h.feed)
		})
	})

	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", h.readyz)
	if d.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", d.Metrics)
	}

	// The contract and its reference page are public: the spec is no secret,
	// and "try it out" asks the reader for a token (DESIGN §2, §6).
	docs := apidocs.New(bank.OpenAPI)
	r.Get("/openapi.yaml", docs.Spec)
	r.Get("/docs", docs.Page)
	r.Get("/docs/*", func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "*")
		if name == "" {
			// The page's own address has no slash: its files' paths are
			// absolute, but a typed /docs/ should still find it.
			http.Redirect(w, r, "/docs", http.StatusMovedPermanently)
			return
		}
		if !docs.Asset(w, r, name) {
			writeProblem(w, r, newProblem(http.StatusNotFound, "not_found", "no resource at this path"))
		}
	})
	return r
}

// methodNotAllowed answers 405 with the methods the path does allow, found by
// asking the router about each.
func methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if routes.Match(chi.NewRouteContext(), m, routingPath(r)) {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) == 0 {
			// chi answers every method it does not know with 405, even on
			// paths it has no route for: those are unknown paths.
			writeProblem(w, r, newProblem(http.StatusNotFound, "not_found", "no resource at this path"))
			return
		}
		detail := "this path does not accept " + r.Method
		if knownMethod(r.Method) == otherLabel {
			detail = "this path does not accept this method" // which may be 60 KB long
		}
		p := newProblem(http.StatusMethodNotAllowed, "method_not_allowed", detail)
		p.allow = strings.Join(allowed, ", ")
		writeProblem(w, r, p)
	}
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.ready != nil {
		if err := h.ready(r.Context()); err != nil {
			logger(r).Warn().Err(err).Msg("not ready")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": notReadyReason(err)})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// NotReadyError is what Deps.Ready returns when the service cannot serve:
// /readyz shows its Reason, the log its cause.
type NotReadyError = dberr.NotReady

// notReadyReason words a readiness failure for /readyz (DESIGN §2): never a
// connection string, host, port or driver message.
func notReadyReason(err error) string { return dberr.ReadyReason(err) }
