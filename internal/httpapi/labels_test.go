package httpapi_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/httpapi"
)

// lockedBuffer collects log lines from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestClientInputIsNoLabel: the report was 20 requests with 60 KB
// made-up methods growing /metrics to 21 MB. Made-up methods and unknown paths
// now share one "other" series, /metrics does not grow with them, and the
// access log carries neither the method nor more than a bounded path.
func TestClientInputIsNoLabel(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	a := newTestAPI(t, func(d *httpapi.Deps) { d.Log = zerolog.New(logs) })

	// One request of each kind first, so that the "other" series exist (and
	// the scrape's own).
	a.do("BREW", "/accounts", nil)
	a.do("BREW", "/no-such-path", nil)
	a.do("GET", "/no-such-path", nil)
	a.do("GET", "/metrics", nil)
	before := a.do("GET", "/metrics", nil)
	beforeSeries := seriesNames(before.Body)

	for i := range 20 {
		method := strings.Repeat(string(rune('A'+i)), 60<<10)
		r := a.do(method, "/accounts", nil)
		if r.StatusCode != http.StatusMethodNotAllowed || len(r.Body) > 1024 {
			t.Fatalf("made-up method: %d, %d bytes of body", r.StatusCode, len(r.Body))
		}
		a.do(method, fmt.Sprintf("/%d/%s", i, strings.Repeat("p", 4<<10)), nil)
		a.do("GET", fmt.Sprintf("/unknown-%d-%s", i, strings.Repeat("q", 4<<10)), nil)
	}
	after := a.do("GET", "/metrics", nil)
	afterSeries := seriesNames(after.Body)
	for s := range afterSeries {
		if !beforeSeries[s] && strings.HasPrefix(s, "http_") {
			t.Errorf("new series after made-up requests: %.200s", s)
		}
	}
	// Counter values gain digits and the runtime's series move; a new label
	// of 60 KB would be far more.
	if grew := len(after.Body) - len(before.Body); grew > 4<<10 {
		t.Errorf("/metrics grew by %d bytes", grew)
	}
	for _, want := range []string{`http_requests_total{method="other",route="other",status="404"}`, `http_requests_total{method="other",route="other",status="405"}`, `http_requests_total{method="GET",route="other",status="404"}`} {
		if !strings.Contains(string(after.Body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		if n := len(sc.Bytes()); n > 2<<10 {
			t.Errorf("a log line of %d bytes: %.200s", n, sc.Text())
		}
	}
	if lines < 60 {
		t.Errorf("%d log lines, want one per request", lines)
	}
}

// seriesNames is the set of series (name and labels, without the value) in a
// Prometheus text exposition.
func seriesNames(body []byte) map[string]bool {
	set := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			set[line[:i]] = true
		}
	}
	return set
}

// TestInFlightGaugeReturnsToTheScrape: whatever the answers were (2xx, 4xx,
// 405, 404), every request that started has ended: the gauge reads only the
// scrape that reads it.
func TestInFlightGaugeReturnsToTheScrape(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	a.do("GET", "/healthz", nil)
	a.do("BREW", "/accounts", nil)
	a.do("GET", "/no-such-path", nil)
	a.do("POST", "/accounts", `{"owner_id":`)
	body := string(a.do("GET", "/metrics", nil).Body)
	if !strings.Contains(body, "\nhttp_requests_in_flight 1\n") {
		t.Errorf("http_requests_in_flight is not 1 (the scrape) after the requests ended:\n%s", grepLines(body, "http_requests_in_flight"))
	}
}

func grepLines(text, prefix string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}
