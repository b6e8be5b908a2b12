package bench

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// accountID is account n's id: md5 of its decimal number, as the pgbench
// scripts compute it with md5(n::text)::uuid.
func accountID(n int) uuid.UUID {
	return uuid.UUID(md5.Sum([]byte(strconv.Itoa(n))))
}

// attackOpts describe one constant-rate vegeta run, the lag run's (the
// closed-loop runs use wrk, see wrk.go).
type attackOpts struct {
	name    string
	clients int // workers, each a keep-alive connection
	// rate is requests per second.
	rate        int
	warmup, dur time.Duration
	targeter    vegeta.Targeter
	// onResult, when set, sees every result of the measured window.
	onResult func(r *vegeta.Result)
}

// attack runs o and measures the requests that end after the warm-up.
func attack(ctx context.Context, mon *monitor, o attackOpts) Stats {
	workers := uint64(o.clients)
	maxWorkers := 8 * workers // a constant rate needs spare workers when answers slow down
	atk := vegeta.NewAttacker(
		vegeta.Workers(workers), vegeta.MaxWorkers(maxWorkers),
		vegeta.Connections(int(maxWorkers)), vegeta.KeepAlive(true),
		vegeta.Timeout(30*time.Second),
	)
	results := atk.Attack(o.targeter, vegeta.ConstantPacer{Freq: o.rate, Per: time.Second}, o.warmup+o.dur, o.name)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			atk.Stop()
		case <-stopped:
		}
	}()

	rec := newRecorder()
	var (
		w    *window
		last time.Time
	)
	warm := time.After(o.warmup)
	for results != nil {
		select {
		case r, ok := <-results:
			if !ok {
				results = nil
				continue
			}
			end := r.End()
			if w == nil {
				continue
			}
			rec.add(end, r.Latency, resultKind(r))
			if end.After(last) {
				last = end
			}
			if o.onResult != nil {
				o.onResult(r)
			}
		case <-warm:
			warm = nil
			w = mon.begin(ctx)
			rec.from = w.start.at
		}
	}
	if w == nil {
		return Stats{Skipped: "the attack ended before its warm-up"}
	}
	usage := w.end(ctx, -1)
	rec.to = last
	st := rec.stats()
	st.Usage = &usage
	return st
}

// resultKind is "" for a 2xx answer, else the status and problem code, or the
// transport error.
func resultKind(r *vegeta.Result) string {
	switch {
	case r.Code >= 200 && r.Code < 300:
		return ""
	case r.Code == 0:
		e := r.Error
		if len(e) > 80 {
			e = e[:80]
		}
		return "transport: " + e
	}
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.Body, &p)
	return fmt.Sprintf("%d %s", r.Code, p.Code)
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// depositTargeter deposits 1.00 into one of ids at random.
func depositTargeter(base string, ids []uuid.UUID) vegeta.Targeter {
	body := []byte(`{"amount":"1.00"}`)
	return func(t *vegeta.Target) error {
		id := ids[rand.IntN(len(ids))]
		t.Method, t.URL, t.Body, t.Header = http.MethodPost, base+"/accounts/"+id.String()+"/deposit", body, jsonHeader
		return nil
	}
}

// openTargeter opens accounts 1..n, each once, with a 100.00 opening deposit.
func openTargeter(base string, n int) vegeta.Targeter {
	var next atomic.Int64
	return func(t *vegeta.Target) error {
		i := int(next.Add(1))
		if i > n {
			return vegeta.ErrNoTargets
		}
		body, _ := json.Marshal(map[string]string{
			"id": accountID(i).String(), "owner_id": "bench-" + strconv.Itoa(i%100), "initial_deposit": "100.00",
		})
		t.Method, t.URL, t.Body, t.Header = http.MethodPost, base+"/accounts", body, jsonHeader
		return nil
	}
}

// withBearer adds Authorization: Bearer token to every target of tr.
func withBearer(tr vegeta.Targeter, token string) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		if err := tr(t); err != nil {
			return err
		}
		h := t.Header.Clone() // the targeters share their header maps
		if h == nil {
			h = http.Header{}
		}
		h.Set("Authorization", "Bearer "+token)
		t.Header = h
		return nil
	}
}

// seedAccounts opens accounts 1..n through the api, as fast as clients allow.
// Accounts that exist already (409) count as opened.
func seedAccounts(ctx context.Context, base, token string, n, clients int) (time.Duration, error) {
	atk := vegeta.NewAttacker(vegeta.Workers(uint64(clients)), vegeta.MaxWorkers(uint64(clients)), vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second))
	start := time.Now()
	results := atk.Attack(withBearer(openTargeter(base, n), token), vegeta.ConstantPacer{}, 0, "seed")
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			atk.Stop()
		case <-stopped:
		}
	}()
	var bad []string
	ok := 0
	for r := range results {
		if (r.Code >= 200 && r.Code < 300) || r.Code == http.StatusConflict {
			ok++
		} else if r.Error != vegeta.ErrNoTargets.Error() && len(bad) < 5 {
			bad = append(bad, resultKind(r))
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if ok != n {
		return 0, fmt.Errorf("seeding: %d of %d accounts opened; errors: %q", ok, n, bad)
	}
	return time.Since(start), nil
}
