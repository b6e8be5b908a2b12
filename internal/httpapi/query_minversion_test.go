package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The read-your-writes endpoints: one account's reads that take min_version.
func minVersionEndpoints(id string) map[string]string {
	return map[string]string{
		"account":         "/accounts/" + id,
		"transactions":    "/accounts/" + id + "/transactions",
		"daily-summaries": "/accounts/" + id + "/daily-summaries",
	}
}

func TestQueryMinVersionWaits(t *testing.T) {
	t.Parallel()
	// A generous wait: the projector's catch-up may itself wait for other
	// tests' transactions (snapshots are cluster-wide).
	a := newQueryAPI(t, withMinVersionWait(10*time.Second))
	id := a.openAccount("alice", "", "10")
	a.project()

	for name, path := range minVersionEndpoints(id) {
		t.Run(name, func(t *testing.T) {
			a := qapi{a.as(t)}
			v := a.deposit(id, "1", name) // not projected yet
			const delay = 200 * time.Millisecond
			projected := make(chan error, 1)
			var caughtUp time.Time
			go func() {
				time.Sleep(delay)
				err := a.catchUp(context.Background())
				caughtUp = time.Now()
				projected <- err
			}()
			start := time.Now()
			resp := a.get(path+"?min_version="+strconv.Itoa(v), nil)
			answered := time.Now()
			if err := <-projected; err != nil {
				t.Fatal(err)
			}
			// Polls are at most 20 ms apart: the answer follows the projection closely.
			if answered.Sub(start) < delay || answered.Sub(caughtUp) > 500*time.Millisecond {
				t.Errorf("answered %s after the request and %s after the projector caught up, want just after it",
					answered.Sub(start), answered.Sub(caughtUp))
			}
			// The answer holds the write waited for.
			m := resp.JSON(t)
			switch name {
			case "account":
				if m["version"] != float64(v) {
					t.Errorf("version %v, want %d", m["version"], v)
				}
			case "transactions":
				first := m["items"].([]any)[0].(map[string]any)
				if first["version"] != float64(v) || first["description"] != name {
					t.Errorf("newest transaction %v, want version %d", first, v)
				}
			case "daily-summaries":
				items := m["items"].([]any)
				last := items[len(items)-1].(map[string]any)
				if last["date"] != utcToday().Format("2006-01-02") || last["closing_balance"] != balanceAfter(v) {
					t.Errorf("today %v, want closing balance %s", last, balanceAfter(v))
				}
			}

			// Already there: no wait.
			start = time.Now()
			a.get(path+"?min_version="+strconv.Itoa(v-1), nil)
			if d := time.Since(start); d > delay {
				t.Errorf("a version already projected took %s", d)
			}
		})
	}
}

// balanceAfter is the balance in TestQueryMinVersionWaits once version v is
// applied: 10.00 opened, then 1.00 per deposit from version 3.
func balanceAfter(v int) string { return strconv.Itoa(10+v-2) + ".00" }

// A goroutine moves account_balances forward by hand, as a projector would:
// the request returns right after, without the client sleeping.
func TestQueryMinVersionWaitsForTheRow(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	id := a.openAccount("alice", "", "")
	a.project()
	v := a.deposit(id, "5", "")
	done := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, err := a.read.Exec(context.Background(), `UPDATE account_balances SET version = $2 WHERE account_id = $1`, id, v)
		done <- err
	}()
	start := time.Now()
	m := a.get("/accounts/"+id+"?min_version="+strconv.Itoa(v), nil).JSON(t)
	elapsed := time.Since(start)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m["version"] != float64(v) || elapsed < 200*time.Millisecond || elapsed > 1200*time.Millisecond {
		t.Errorf("version %v after %s, want %d just after 200ms", m["version"], elapsed, v)
	}
}

func TestQueryMinVersionLagging(t *testing.T) {
	t.Parallel()
	const wait = 300 * time.Millisecond
	a := newQueryAPI(t, withMinVersionWait(wait))
	id := a.openAccount("alice", "", "10")
	a.project()
	v := a.deposit(id, "1", "") // the projector never runs again
	for name, path := range minVersionEndpoints(id) {
		start := time.Now()
		resp := a.do(http.MethodGet, path+"?min_version="+strconv.Itoa(v), nil)
		elapsed := time.Since(start)
		wantProblem(t, resp, http.StatusServiceUnavailable, "projection_lagging", "")
		if got := resp.Header.Get("Retry-After"); got != "1" {
			t.Errorf("%s: Retry-After %q, want 1", name, got)
		}
		if elapsed < wait || elapsed > wait+time.Second {
			t.Errorf("%s: gave up after %s, want MIN_VERSION_WAIT (%s)", name, elapsed, wait)
		}
	}
}

func TestQueryMinVersionNeverReached(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	id := a.openAccount("alice", "", "10") // version 2
	a.project()
	for name, path := range minVersionEndpoints(id) {
		start := time.Now()
		wantProblem(t, a.do(http.MethodGet, path+"?min_version=3", nil), http.StatusBadRequest, "validation_failed", "min_version")
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: a version the stream never reached took %s to refuse", name, d)
		}
		a.get(path+"?min_version=2", nil)
	}
	// as_of answers from the event store: min_version is checked, never waited for.
	v := a.deposit(id, "1", "")
	wantProblem(t, a.do(http.MethodGet, "/accounts/"+id+"?as_of=2100-01-01T00:00:00Z&min_version="+strconv.Itoa(v+1), nil),
		http.StatusBadRequest, "validation_failed", "min_version")
	m := a.get("/accounts/"+id+"?as_of=2100-01-01T00:00:00Z&min_version="+strconv.Itoa(v), nil).JSON(t)
	if m["version"] != float64(v) {
		t.Errorf("as_of with min_version: version %v, want %d", m["version"], v)
	}
	// An account the event store does not have is not found, whatever the version.
	for _, path := range minVersionEndpoints(uuid.NewString()) {
		wantProblem(t, a.do(http.MethodGet, path+"?min_version=1", nil), http.StatusNotFound, "account_not_found", "")
	}
}
