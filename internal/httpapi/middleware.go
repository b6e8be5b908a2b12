package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

type ctxKey int

const requestIDKey ctxKey = iota

// requestID returns the request's id as echoed in X-Request-ID.
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

// withRequestID takes a well-formed X-Request-ID or makes one, echoes it on every
// response, and gives the request a logger that carries it.
func withRequestID(base zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Request-ID")
			if !requestIDPattern.MatchString(id) {
				id = newRequestID()
			}
			w.Header().Set("X-Request-ID", id)
			log := base.With().Str("request_id", id).Logger()
			ctx := context.WithValue(log.WithContext(r.Context()), requestIDKey, id)
			next.ServeHTTP(w, r.WithContext(ctx))
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

// HTTPObserver is told about every finished request; metrics implement it.
type HTTPObserver interface {
	RequestFinished(route, method string, status int, d time.Duration)
}

// accessLog logs each request once it is done and reports it to obs, by route
// pattern (not raw path) so that account ids do not explode label cardinality.
// Nothing a client sends becomes a label or an unbounded log field: an unknown
// method or an unmatched path is "other" (DESIGN §6), and the logged path is
// cut short.
func accessLog(obs HTTPObserver) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			d := time.Since(start)
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" {
				route = otherLabel
			}
			method := knownMethod(r.Method)
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			if obs != nil {
				obs.RequestFinished(route, method, status, d)
			}
			ev := zerolog.Ctx(r.Context()).Info()
			if status >= 500 {
				ev = zerolog.Ctx(r.Context()).Error()
			} else if route == "/healthz" || route == "/readyz" || route == "/metrics" {
				ev = zerolog.Ctx(r.Context()).Debug()
			}
			ev.Str("method", method).Str("path", truncate(r.URL.Path, maxLoggedPath)).Str("route", route).
				Int("status", status).Int("bytes", ww.BytesWritten()).Dur("duration", d).Msg("request")
		})
	}
}

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
				zerolog.Ctx(r.Context()).Error().Str("panic", fmt.Sprint(v)).Bytes("stack", debugStack()).Msg("handler panicked")
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
