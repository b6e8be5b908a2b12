package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evbank/bank/client"
)

const shutdownTimeout = 10 * time.Second

// TestAPIGracefulShutdown sends SIGTERM to the api while requests are in
// flight: it stops accepting connections at once, answers the requests it
// has, and exits 0 within SHUTDOWN_TIMEOUT.
//
// The requests in flight are reads with min_version for a version the
// projector has not applied yet (no projector runs), so they wait inside
// the api until the projector is started after the SIGTERM.
func TestAPIGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := newStack(t, true, "SHUTDOWN_TIMEOUT="+shutdownTimeout.String(), "MIN_VERSION_WAIT=8s")
	api := s.startAPI(t)
	c := newClient(t, api.url, api.token)
	acc := openAccount(t, c, "dora", "EUR", "12.34") // version 2, not projected

	// Each waiting request on a connection of its own, so that the server
	// tracks it as a new connection with a request to read (which Shutdown
	// leaves alone) rather than an idle one (which it closes).
	fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer fresh.CloseIdleConnections()
	fc, err := client.NewClientWithResponses(api.url, client.WithHTTPClient(fresh), bearer(api.token))
	if err != nil {
		t.Fatal(err)
	}
	const inFlight = 4
	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make(chan answer, inFlight)
	var written sync.WaitGroup
	for i := range inFlight {
		written.Add(1)
		var once sync.Once
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(written.Done) },
		})
		go func() {
			defer once.Do(written.Done) // also when the request fails before it is written
			var a answer
			if i%2 == 0 {
				res, err := fc.GetAccountWithResponse(ctx, acc.Id, &client.GetAccountParams{MinVersion: ptr(2)})
				if a.err = err; err == nil {
					a.status, a.body = res.StatusCode(), string(res.Body)
				}
			} else {
				res, err := fc.ListTransactionsWithResponse(ctx, acc.Id, &client.ListTransactionsParams{MinVersion: ptr(2)})
				if a.err = err; err == nil {
					a.status, a.body = res.StatusCode(), string(res.Body)
				}
			}
			answers <- a
		}()
	}
	written.Wait()
	// In flight means read by the server and inside a handler: a request
	// still unread when the shutdown begins is dropped with its connection
	// (net/http's rule), so SIGTERM waits for the gauge, which also counts
	// the scrape that reads it.
	eventually(t, 10*time.Second, func() (bool, string) {
		n := sum(metrics(t, api.url), "http_requests_in_flight")
		return n >= inFlight+1, fmt.Sprintf("%.0f requests in flight, want the %d waiting and the scrape", n, inFlight)
	})
	select {
	case a := <-answers:
		t.Fatalf("a min_version read answered before the projector ran: %+v", a)
	default:
	}

	api.signal(t, syscall.SIGTERM)
	sigterm := time.Now()
	// No new connections from now on.
	eventually(t, 5*time.Second, func() (bool, string) {
		_, err := getFresh(fresh, api.url+"/healthz")
		return err != nil && strings.Contains(err.Error(), "connection refused"), "the api still accepts connections after SIGTERM"
	})
	if !api.running() {
		t.Fatalf("the api exited (%s) with requests in flight", api.exitStatus())
	}

	// The projector applies version 2; the waiting requests get their answers.
	s.startProjector(t, "projector")
	for range inFlight {
		a := <-answers
		if a.err != nil || a.status != http.StatusOK || !strings.Contains(a.body, `"12.34"`) {
			t.Errorf("request in flight at SIGTERM: %d %s %v; want 200 with the balance", a.status, a.body, a.err)
		}
	}
	if code := api.wait(t, time.Until(sigterm.Add(shutdownTimeout))); code != 0 {
		t.Errorf("api exit code %d after SIGTERM; want 0", code)
	}
	t.Logf("api drained and exited %s after SIGTERM", time.Since(sigterm).Round(time.Millisecond))
	api.logLine(t, time.Second, "api", "stopped")
}

// TestProjectorGracefulShutdown sends SIGTERM to the projector while it
// applies batches: it finishes (commits) the batch in progress and exits 0
// within SHUTDOWN_TIMEOUT, and a new projector goes on from there exactly.
func TestProjectorGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := newStack(t, true, "SHUTDOWN_TIMEOUT="+shutdownTimeout.String(), "PROJECTOR_BATCH_SIZE=5")
	api := s.startAPI(t)
	c := newClient(t, api.url, api.token)
	accounts := loadAccounts(t, c, 3)
	proj := s.startProjector(t, "projector-1")
	l := startLoad(c, accounts, 3)
	defer l.cancel()
	waitApplying(t, proj)
	l.waitFor(t, 30)

	proj.signal(t, syscall.SIGTERM)
	sigterm := time.Now()
	if code := proj.wait(t, shutdownTimeout); code != 0 {
		t.Errorf("projector exit code %d after SIGTERM; want 0", code)
	}
	t.Logf("projector stopped %s after SIGTERM", time.Since(sigterm).Round(time.Millisecond))
	proj.logLine(t, time.Second, "projector", "projector stopped; lock released")
	proj.logLine(t, time.Second, "projector", "stopped")

	s.startProjector(t, "projector-2")
	l.waitFor(t, 30)
	l.stop(t)
	s.waitCaughtUp(t, 60*time.Second)
	s.checkReadModel(t)
	s.verify(t)
	s.noProjectorErrors(t)
}

// getFresh GETs url on a connection of its own (c keeps none).
func getFresh(c *http.Client, url string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
