package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/httpapi"
)

// TestLogLines pins the log lines a request leaves, field by field and in
// order: the access log line (its level following the status) and a line a
// handler logs, both carrying the request's id.
func TestLogLines(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	var down atomic.Bool
	a := newTestAPI(t, func(d *httpapi.Deps) {
		d.Log = zerolog.New(logs)
		ping := d.Ready
		d.Ready = func(ctx context.Context) error {
			if down.Load() {
				return &httpapi.NotReadyError{Reason: "event store unreachable", Err: errors.New("down for the test")}
			}
			return ping(ctx)
		}
	})

	id := uuid.NewString()
	r := a.do("GET", "/accounts/"+id, nil, "X-Request-ID", "log-test.1")
	if r.StatusCode != http.StatusNotFound || r.Header.Get("X-Request-ID") != "log-test.1" {
		t.Fatalf("GET unknown account: %d, X-Request-ID %q", r.StatusCode, r.Header.Get("X-Request-ID"))
	}
	down.Store(true)
	if r := a.do("GET", "/readyz", nil, "X-Request-ID", "log-test.2"); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz: %d", r.StatusCode)
	}

	want := []*regexp.Regexp{
		regexp.MustCompile(`^\{"level":"info","request_id":"log-test\.1","method":"GET","path":"/accounts/` + id +
			`","route":"/accounts/\{id\}","status":404,"bytes":\d+,"duration":[0-9.e-]+,"message":"request"\}$`),
		regexp.MustCompile(`^\{"level":"warn","request_id":"log-test\.2","error":"[^"]+","message":"not ready"\}$`),
		regexp.MustCompile(`^\{"level":"error","request_id":"log-test\.2","method":"GET","path":"/readyz","route":"/readyz",` +
			`"status":503,"bytes":\d+,"duration":[0-9.e-]+,"message":"request"\}$`),
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("log line %d:\n got %s\nwant %s", i, lines[i], re)
		}
	}
}
