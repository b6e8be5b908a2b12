package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/store"
)

// LoadTime is how long the event store takes to load one account.
type LoadTime struct {
	Events int `json:"events"`
	// SnapshotAt is the version of the snapshot the load starts from (0: none,
	// the whole stream is replayed); the tail is Events-SnapshotAt events.
	SnapshotAt int     `json:"snapshot_at"`
	Loads      int     `json:"loads"`
	Mean       float64 `json:"mean_ms"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
}

// measureLoads seeds an account of each size through the store, with a
// snapshot 50 events before its end (the average tail under SNAPSHOT_EVERY=100),
// and the largest once more without any snapshot, then times store Load.
func measureLoads(ctx context.Context, pool *pgxpool.Pool, sizes []int, budget time.Duration) ([]LoadTime, error) {
	es := store.NewEventStore(pool, store.Options{})
	type variant struct{ events, snapAt int }
	var vs []variant
	for _, n := range sizes {
		vs = append(vs, variant{n, max(n-50, 0)})
	}
	if len(sizes) > 0 {
		vs = append(vs, variant{sizes[len(sizes)-1], 0})
	}
	var out []LoadTime
	for _, v := range vs {
		id, err := seedStream(ctx, es, v.events, v.snapAt)
		if err != nil {
			return nil, err
		}
		// Warm the caches as a busy server would have them, then time.
		for range 5 {
			if _, err := es.Load(ctx, id); err != nil {
				return nil, err
			}
		}
		var lat []time.Duration
		deadline := time.Now().Add(budget)
		for len(lat) < 20 || (time.Now().Before(deadline) && len(lat) < 2000) {
			start := time.Now()
			a, err := es.Load(ctx, id)
			if err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(start))
			if a.Version() != v.events {
				return nil, fmt.Errorf("load of a %d-event account gave version %d", v.events, a.Version())
			}
		}
		p50, _, p99, _, mean := latencies(lat)
		out = append(out, LoadTime{Events: v.events, SnapshotAt: v.snapAt, Loads: len(lat), Mean: mean, P50: p50, P99: p99})
	}
	return out, nil
}

// seedStream appends an account of n events (opening, then 1-cent deposits)
// in chunks, writing a snapshot at version snapAt when it is not 0.
func seedStream(ctx context.Context, es *store.EventStore, n, snapAt int) (uuid.UUID, error) {
	usd := domain.MustCurrency("USD")
	id := uuid.New()
	now := time.Now()
	a := domain.NewAccount(id)
	if err := a.Open("bench-load", usd, 0, now); err != nil {
		return id, err
	}
	version := 0
	flush := func() error {
		if err := es.Append(ctx, command.Append{Account: a, ExpectedVersion: version}); err != nil {
			return err
		}
		a.MarkCommitted()
		version = a.Version()
		return nil
	}
	for a.Version() < n {
		if a.Version() == snapAt || a.Version()-version >= 500 {
			if err := flush(); err != nil {
				return id, err
			}
			if version == snapAt {
				if err := es.SaveSnapshot(ctx, a.State()); err != nil {
					return id, err
				}
			}
		}
		if err := a.Deposit(1, usd, "", now); err != nil {
			return id, err
		}
	}
	return id, flush()
}

// RebuildStats sets `projector rebuild` beside COPY of the same rows.
type RebuildStats struct {
	// Status is "measured", "pending" (the projector has no rebuild yet),
	// "failed" or "skipped".
	Status       string  `json:"status"`
	Events       int64   `json:"events"`
	Seconds      float64 `json:"seconds,omitempty"`
	EventsPerSec float64 `json:"events_per_sec,omitempty"`
	Output       string  `json:"output,omitempty"`
	// Reported* are the rebuild's own figures ("rebuilt ... from N events ...
	// R events/s"): its fold-and-write rate, without process start and swap.
	ReportedEvents int64   `json:"reported_events,omitempty"`
	ReportedPerSec float64 `json:"reported_events_per_sec,omitempty"`
	// COPY of the events table: out to the client, and into a copy of the
	// table with its indexes in place.
	CopyOutPerSec float64 `json:"copy_out_events_per_sec"`
	CopyInPerSec  float64 `json:"copy_in_events_per_sec"`
}

// measureCopy times COPY of every event out of the table and into a fresh
// table of the same shape with the same indexes.
func measureCopy(ctx context.Context, pool *pgxpool.Pool, rs *RebuildStats) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	pg := conn.Conn().PgConn()
	var buf bytes.Buffer
	start := time.Now()
	tag, err := pg.CopyTo(ctx, &buf, `COPY events TO STDOUT (FORMAT binary)`)
	if err != nil {
		return fmt.Errorf("copy out: %w", err)
	}
	out := time.Since(start)
	rs.Events = tag.RowsAffected()
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS bench_events_copy;
CREATE TABLE bench_events_copy (LIKE events INCLUDING DEFAULTS INCLUDING INDEXES)`); err != nil {
		return err
	}
	start = time.Now()
	if _, err := pg.CopyFrom(ctx, &buf, `COPY bench_events_copy FROM STDIN (FORMAT binary)`); err != nil {
		return fmt.Errorf("copy in: %w", err)
	}
	in := time.Since(start)
	if _, err := conn.Exec(ctx, `DROP TABLE bench_events_copy`); err != nil {
		return err
	}
	rs.CopyOutPerSec = round1(float64(rs.Events) / out.Seconds())
	rs.CopyInPerSec = round1(float64(rs.Events) / in.Seconds())
	return nil
}

// measureRebuild runs `projector rebuild` beside the live projector when the
// binary has one, and times it over the whole event store.
func measureRebuild(ctx context.Context, bin string, env []string, timeout time.Duration, rs *RebuildStats) {
	help, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	if !strings.Contains(string(help), "rebuild") || strings.Contains(string(help), "not available") {
		rs.Status = "pending"
		rs.Output = "projector has no rebuild command yet"
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "rebuild")
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	rs.Output = tailLines(string(out), 5)
	var ee *exec.ExitError
	switch {
	case err != nil && errors.As(err, &ee) && strings.Contains(string(out), "not available"):
		rs.Status = "pending"
	case err != nil:
		rs.Status = "failed"
		rs.Output = err.Error() + "\n" + rs.Output
	default:
		rs.Status = "measured"
		rs.Seconds = round2(d.Seconds())
		rs.EventsPerSec = round1(float64(rs.Events) / d.Seconds())
		if m := rebuiltLine.FindStringSubmatch(string(out)); m != nil {
			rs.ReportedEvents, _ = strconv.ParseInt(m[1], 10, 64)
			rs.ReportedPerSec, _ = strconv.ParseFloat(m[2], 64)
			rs.Output = m[0]
		}
	}
}

// rebuiltLine is the summary `projector rebuild` prints.
var rebuiltLine = regexp.MustCompile(`rebuilt .* from (\d+) events .*?, (\d+(?:\.\d+)?) events/s`)

// inProcess runs deposits through command.Service in this process, as the api
// does but without HTTP: clients goroutines, each waiting for its deposit,
// over a pool the api's size. It splits the service's overhead between the
// HTTP layer and the command and store layers.
func inProcess(ctx context.Context, mon *monitor, pool *pgxpool.Pool, ids []uuid.UUID, clients int, warmup, dur time.Duration) Stats {
	svc := command.NewService(store.NewEventStore(pool, store.Options{SnapshotEvery: 100}), command.Config{CacheSize: command.DefaultCacheSize})
	type result struct {
		end time.Time
		lat time.Duration
		err error
	}
	results := make(chan result, 1024)
	stop := time.Now().Add(warmup + dur)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				start := time.Now()
				_, err := svc.Deposit(ctx, command.Deposit{AccountID: ids[rand.IntN(len(ids))], Amount: "1.00"}, command.Options{})
				results <- result{time.Now(), time.Since(start), err}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	rec := newRecorder()
	var (
		w    *window
		last time.Time
	)
	warm := time.After(warmup)
	for results != nil {
		select {
		case r, ok := <-results:
			if !ok {
				results = nil
				continue
			}
			if w == nil {
				continue
			}
			kind := ""
			if r.err != nil {
				kind = r.err.Error()
			}
			rec.add(r.end, r.lat, kind)
			last = r.end
		case <-warm:
			warm = nil
			w = mon.begin(ctx)
			rec.from = w.start.at
		}
	}
	if w == nil {
		return Stats{Skipped: "ended before its warm-up"}
	}
	u := w.end(ctx, -1)
	rec.to = last
	st := rec.stats()
	st.Usage = &u
	return st
}
