package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/auth"
)

// validRequestID reports whether s may serve as a request id as sent: 1-128
// of [A-Za-z0-9._:-] (the contract's X-Request-ID).
func validRequestID(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// reqState is what the router's middleware knows about one request: its id,
// the server's logger, the principal once authenticate has verified one,
// and the writer that records the status and size for the access log. begin
// allocates one per request and puts it in the context once: a context value
// (and so a copy of the *http.Request) for each of these cost an allocation or
// two apiece, and a child logger carrying the id copied the logger's fields
// on every request although most requests log one line.
type reqState struct {
	id        string
	log       *zerolog.Logger // the server's; each line adds request_id itself
	principal auth.Principal
	authed    bool // principal is set
	w         statusWriter
}

type ctxKey int

const stateKey ctxKey = iota

// stateOf is the request's state; nil outside the router's middleware.
func stateOf(r *http.Request) *reqState {
	st, _ := r.Context().Value(stateKey).(*reqState)
	return st
}

// requestID returns the request's id as echoed in X-Request-ID.
func requestID(r *http.Request) string {
	if st := stateOf(r); st != nil {
		return st.id
	}
	return ""
}

// logger is the logger for what a handler has to say about the request: the
// server's with the request's id, as the access log line carries it. Built
// when asked for, which only the rare lines (errors, a failed readiness
// check) do.
func logger(r *http.Request) *zerolog.Logger {
	st := stateOf(r)
	if st == nil {
		return zerolog.Ctx(r.Context())
	}
	l := st.log.With().Str("request_id", st.id).Logger()
	return &l
}

// begin starts every request: it takes a well-formed X-Request-ID or makes
// one, echoes it on every response, gives the request its deadline
// (REQUEST_TIMEOUT; 0 is none) and puts the request's state in its context.
// Header names are written in their canonical form (X-Request-Id, as
// net/http sends it anyway): Get and Set would otherwise allocate the
// canonical form of "X-Request-ID" on every call.
func begin(log zerolog.Logger, timeout time.Duration) func(http.Handler) http.Handler {
	base := &log
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Request-Id")
			if !validRequestID(id) {
				id = newRequestID()
			}
			w.Header().Set("X-Request-Id", id)
			st := &reqState{id: id, log: base}
			ctx := r.Context()
			if timeout > 0 {
				// Its database work is cancelled when the deadline passes,
				// and the handler answers 503 timeout
				// (context.DeadlineExceeded in problemFor).
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, stateKey, st)))
		})
	}
}

// newRequestID is uuid.NewString (a random, version 4 UUID) with one
// allocation instead of two: uuid reads its random bytes through an
// io.Reader, which moves them to the heap, where crypto/rand.Read fills
// an array on the stack.
func newRequestID() string {
	var u uuid.UUID
	_, _ = rand.Read(u[:])  // never fails (it crashes the program instead)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant of RFC 9562
	var buf [36]byte
	return string(appendUUID(buf[:0], u))
}

// HTTPObserver is told about every request: when it starts and ends (ended
// also when a panic aborts it) and, once answered, how.
type HTTPObserver interface {
	RequestStarted()
	RequestEnded()
	RequestFinished(route, method string, status int, d time.Duration)
}

// accessLog logs each request once it is done and reports it to obs, by route
// pattern (not raw path) so that account ids do not explode label cardinality.
// Nothing a client sends becomes a label or an unbounded log field: an unknown
// method or an unmatched path is "other" (DESIGN §6), and the logged path is
// cut short. It runs behind begin, whose state holds its response writer.
func accessLog(obs HTTPObserver) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st := stateOf(r)
			if st == nil {
				panic("httpapi: accessLog runs behind begin")
			}
			if obs != nil {
				obs.RequestStarted()
				defer obs.RequestEnded()
			}
			start := time.Now()
			st.w = statusWriter{ResponseWriter: w}
			next.ServeHTTP(&st.w, r)
			d := time.Since(start)
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" {
				route = otherLabel
			}
			method := knownMethod(r.Method)
			status := st.w.status
			if status == 0 {
				status = http.StatusOK
			}
			if obs != nil {
				obs.RequestFinished(route, method, status, d)
			}
			var ev *zerolog.Event
			switch {
			case status >= 500:
				ev = st.log.Error()
			case route == "/healthz" || route == "/readyz" || route == "/metrics":
				ev = st.log.Debug()
			default:
				ev = st.log.Info()
			}
			// request_id comes first, where a child logger's field would.
			ev.Str("request_id", st.id).Str("method", method).Str("path", truncate(r.URL.Path, maxLoggedPath)).Str("route", route).
				Int("status", status).Int("bytes", st.w.bytes).Dur("duration", d).Msg("request")
		})
	}
}

// statusWriter passes a response through and records its status and size,
// as chi's middleware.WrapResponseWriter does (the same rules: 1xx statuses
// pass without counting, the first other status wins, a Write without one
// is a 200), without an allocation of its own: it lives in the reqState.
// Unwrap lets http.ResponseController reach the connection's Flush, Hijack
// and deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	switch {
	case code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols:
		w.ResponseWriter.WriteHeader(code)
	case w.status == 0:
		w.status = code
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// ReadFrom keeps io.Copy to the response (http.ServeContent's) on the
// connection's own ReadFrom, as chi's wrapper did.
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := io.Copy(w.ResponseWriter, src)
	w.bytes += int(n)
	return n, err
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// otherLabel stands for any method or route the service does not know, in
// metrics and logs alike.
const otherLabel = "other"

// maxLoggedPath bounds the path written to the access log: a request line can
// be as long as the header limit, and each log line would carry all of it.
const maxLoggedPath = 256

// knownMethod returns m when it is one of the methods HTTP defines, else
// otherLabel: a method is any token a client likes to send.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return otherLabel
}

// recoverer turns a panic into a logged 500 problem instead of a dropped connection.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				logger(r).Error().Str("panic", fmt.Sprint(v)).Bytes("stack", debugStack()).Msg("handler panicked")
				writeProblem(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps every body at the contract's 1 MiB (plus one byte so the
// handler can tell "over").
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes+1)
		next.ServeHTTP(w, r)
	})
}

func debugStack() []byte { return debug.Stack() }

// routingPath is the path chi routes r on: the escaped form when it differs
// from the decoded one, so that an encoded slash stays inside its segment.
func routingPath(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
		return rctx.RoutePath
	}
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}
