package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evbank/bank/client"
	"github.com/evbank/bank/internal/auth/authtest"
	"github.com/evbank/bank/internal/pgtest"
)

// stack is one service under test: its databases and the environment every
// binary of it gets.
type stack struct {
	eventsURL string
	readURL   string // == eventsURL when the read side shares the database
	env       []string
	// token is an admin's bearer token from the stack's own issuer, whose
	// JWKS file the api reads (AUTH_MODE=jwt, as in production).
	token string
	// iss signs tokens the api accepts, for principals other than the admin.
	iss *authtest.Issuer

	projectors []*service // every projector started, for noProjectorErrors
}

// newStack creates fresh databases: a migrated event store and, when
// separateRead, an empty read database that the binaries migrate themselves.
// extra env entries override the defaults.
func newStack(t *testing.T, separateRead bool, extra ...string) *stack {
	t.Helper()
	s := &stack{eventsURL: pgtest.NewDatabase(t)}
	iss := authtest.New(t)
	s.token = iss.TokenFor("e2e-admin", "bank:admin")
	s.iss = iss
	s.readURL = s.eventsURL
	if separateRead {
		s.readURL = pgtest.NewEmptyDatabase(t)
	}
	s.env = append([]string{
		"DATABASE_URL=" + s.eventsURL,
		"READ_DATABASE_URL=" + s.readURL,
		"LOG_LEVEL=info",
		"LOG_FORMAT=json",
		"SHUTDOWN_TIMEOUT=10s",
		"PROJECTOR_BATCH_TIMEOUT=5s",
		"PROJECTOR_POLL_INTERVAL=10ms",
		"PROJECTOR_STANDBY_RETRY=100ms",
		// Port 0: the address is read from the "listening" log line, so no
		// free port is picked here only to be taken by someone else.
		"HTTP_ADDR=127.0.0.1:0",
		"PROJECTOR_ADDR=127.0.0.1:0",
		"AUTH_MODE=jwt",
		"AUTH_JWKS_FILE=" + iss.File(),
		"AUTH_ISSUER=" + iss.Issuer,
		"AUTH_AUDIENCE=" + iss.Audience,
	}, extra...)
	return s
}

// service is a running api or projector process and its base URL.
type service struct {
	*process
	url   string
	token string // an api's: a bearer token it accepts
}

// startAPI starts an api and waits until it is ready.
func (s *stack) startAPI(t *testing.T) *service {
	t.Helper()
	p := startProcess(t, "api", "", apiBin, s.env)
	svc := &service{process: p, url: "http://" + p.listenAddr(t, "api", "api listening"), token: s.token}
	svc.waitReady(t)
	return svc
}

// startProjector starts a projector and waits until it is ready (which says
// nothing of whether it is the active one).
func (s *stack) startProjector(t *testing.T, name string) *service {
	t.Helper()
	p := startProcess(t, name, "", projectorBin, s.env)
	svc := &service{process: p, url: "http://" + p.listenAddr(t, "projector", "projector listening")}
	svc.waitReady(t)
	s.projectors = append(s.projectors, svc)
	return svc
}

// noProjectorErrors fails the test if a projector logged an error: a batch
// applied twice after a crash, say, would fail on a unique key and be
// retried, and the tables could still end up right.
func (s *stack) noProjectorErrors(t *testing.T) {
	t.Helper()
	for _, p := range s.projectors {
		for _, line := range strings.Split(p.out.String(), "\n") {
			if strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"fatal"`) {
				t.Errorf("%s logged an error: %s", p.name, line)
			}
		}
	}
}

// verify runs `projector verify` with the stack's environment and fails the
// test unless it finds no drift (exit status 0).
func (s *stack) verify(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, projectorBin, "verify")
	cmd.Env = childEnv(s.env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("projector verify: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "no drift") {
		t.Fatalf("projector verify exited 0 without saying there is no drift:\n%s", out)
	}
	if strings.Contains(string(out), "WARNING: DATA RACE") {
		t.Fatalf("projector verify reported a data race:\n%s", out)
	}
	t.Logf("projector verify: %s", strings.TrimSpace(string(out)))
}

// httpClient is shared by every test. A killed process's connections are
// closed by the kernel, and the transport drops them from its idle pool.
var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
}

// newClient is the generated client for baseURL; every request it sends
// carries token as a bearer token ("" sends none).
func newClient(t *testing.T, baseURL, token string) *client.ClientWithResponses {
	t.Helper()
	c, err := client.NewClientWithResponses(baseURL, client.WithHTTPClient(httpClient), bearer(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bearer makes the client send Authorization: Bearer token on every request.
func bearer(token string) client.ClientOption {
	return client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return nil
	})
}

func (s *service) waitReady(t *testing.T) {
	t.Helper()
	eventually(t, 60*time.Second, func() (bool, string) {
		if !s.running() {
			t.Fatalf("%s exited (%s) before it was ready:\n%s", s.name, s.exitStatus(), tail(s.out.String(), 16<<10))
		}
		code, body, err := get(s.url + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("%s /readyz: %d %s", s.name, code, body)
	})
}

func get(url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metrics scrapes a /metrics endpoint into series (`name{labels}`) and values.
func metrics(t *testing.T, baseURL string) map[string]float64 {
	t.Helper()
	m, err := scrape(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func scrape(baseURL string) (map[string]float64, error) {
	code, body, err := get(baseURL + "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %d", baseURL, code)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// name{labels} value [timestamp]; label values here hold no spaces.
		i := strings.LastIndexByte(line, '}')
		if i < 0 {
			i = strings.IndexByte(line, ' ') - 1
		}
		if i < 0 || i+2 > len(line) {
			return nil, fmt.Errorf("unparsable metrics line %q", line)
		}
		fields := strings.Fields(line[i+1:])
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[line[:i+1]] = v
	}
	return out, sc.Err()
}

// sum adds the values of every series of metric name whose labels contain
// each of labels (`key="value"`).
func sum(m map[string]float64, name string, labels ...string) float64 {
	total := 0.0
	for series, v := range m {
		base, rest, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if ok {
			total += v
		}
	}
	return total
}

// active reports the projector's projector_active gauge (false when it
// cannot be scraped, e.g. after a kill).
func (s *service) active() bool {
	m, err := scrape(s.url)
	return err == nil && m["projector_active"] == 1
}
