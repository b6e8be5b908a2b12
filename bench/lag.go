package bench

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// LagStats is the projection lag under a constant deposit rate: the time from
// a command's acknowledgement to account_balances holding its version.
type LagStats struct {
	Rate    int     `json:"rate"` // deposits per second offered
	Samples int     `json:"samples"`
	Lost    int     `json:"lost"` // acknowledged but not seen within the timeout
	P50     float64 `json:"p50_ms"`
	P95     float64 `json:"p95_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
	// PollGapP99 and PollGapMax are the sampler's own delays between polls:
	// lags are only as exact as these are small.
	PollGapP99 float64 `json:"poll_gap_p99_ms"`
	PollGapMax float64 `json:"poll_gap_max_ms"`
	// Projector is what the projector's own metrics say about the same window.
	Projector ProjectorBatches `json:"projector"`
	// Deposits are the HTTP figures of the same run.
	Deposits Stats  `json:"deposits"`
	Skipped  string `json:"skipped,omitempty"`
}

// ProjectorBatches summarises projector_batch_size and
// projector_batch_duration_seconds over a window (bucket upper bounds).
type ProjectorBatches struct {
	Batches     int     `json:"batches"`
	MeanEvents  float64 `json:"mean_events"`
	MeanMS      float64 `json:"mean_ms"`
	P50MS       float64 `json:"p50_ms_at_most"`
	P99MS       float64 `json:"p99_ms_at_most"`
	MaxBucketMS float64 `json:"max_ms_at_most"`
}

func projectorBatches(before, after []byte) ProjectorBatches {
	d := promHistogram(after, "projector_batch_duration_seconds").minus(promHistogram(before, "projector_batch_duration_seconds"))
	n := promHistogram(after, "projector_batch_size").minus(promHistogram(before, "projector_batch_size"))
	pb := ProjectorBatches{Batches: int(d.count)}
	if d.count > 0 {
		pb.MeanEvents = round1(n.sum / n.count)
		pb.MeanMS = round2(1000 * d.sum / d.count)
		pb.P50MS = round2(1000 * d.quantile(0.5))
		pb.P99MS = round2(1000 * d.quantile(0.99))
		pb.MaxBucketMS = round2(1000 * d.quantile(1))
	}
	return pb
}

type lagSample struct {
	id      uuid.UUID
	version int
	acked   time.Time
}

// lagSampler polls account_balances on its own connection, about every
// millisecond, for the versions that deposits acknowledged.
type lagSampler struct {
	conn    *pgx.Conn
	in      chan lagSample
	lags    []time.Duration
	lost    int             // run's: not seen within the timeout
	gaps    []time.Duration // run's: between poll starts
	dropped atomic.Int64    // observe's: the queue was full
	done    chan struct{}
	timeout time.Duration
}

func newLagSampler(conn *pgx.Conn) *lagSampler {
	return &lagSampler{conn: conn, in: make(chan lagSample, 4096), done: make(chan struct{}), timeout: 10 * time.Second}
}

// observe is an attackOpts.onResult: it queues successful deposits.
func (l *lagSampler) observe(r *vegeta.Result) {
	if r.Code != 200 {
		return
	}
	var a struct {
		ID      uuid.UUID `json:"id"`
		Version int       `json:"version"`
	}
	if json.Unmarshal(r.Body, &a) != nil || a.Version == 0 {
		return
	}
	select {
	case l.in <- lagSample{id: a.ID, version: a.Version, acked: r.End()}:
	default:
		l.dropped.Add(1) // the sampler cannot keep up: count it rather than stall the load
	}
}

// run polls until close is called and every queued sample is seen or timed out.
func (l *lagSampler) run(ctx context.Context) {
	defer close(l.done)
	var (
		pending  []lagSample
		closed   bool
		ids      []uuid.UUID
		in       = l.in
		lastPoll time.Time
	)
	for ctx.Err() == nil {
		// Take what has arrived.
	drain:
		for {
			select {
			case s, ok := <-in:
				if !ok {
					closed, in = true, nil
					break drain
				}
				pending = append(pending, s)
			default:
				break drain
			}
		}
		if len(pending) == 0 {
			if closed {
				return
			}
			lastPoll = time.Time{} // idle: no gap to count
			time.Sleep(time.Millisecond)
			continue
		}
		ids = ids[:0]
		for _, s := range pending {
			ids = append(ids, s.id)
		}
		// The row was not visible at the previous poll and is at this one:
		// it became visible in between, at the latest when this poll started.
		polled := time.Now()
		if !lastPoll.IsZero() {
			l.gaps = append(l.gaps, polled.Sub(lastPoll))
		}
		lastPoll = polled
		rows, err := l.conn.Query(ctx, `SELECT account_id, version FROM account_balances WHERE account_id = ANY($1)`, ids)
		if err != nil {
			return
		}
		have := map[uuid.UUID]int{}
		for rows.Next() {
			var (
				id uuid.UUID
				v  int
			)
			if rows.Scan(&id, &v) == nil {
				have[id] = v
			}
		}
		rows.Close()
		kept := pending[:0]
		for _, s := range pending {
			switch {
			case have[s.id] >= s.version:
				l.lags = append(l.lags, max(polled.Sub(s.acked), 0))
			case polled.Sub(s.acked) > l.timeout:
				l.lost++
			default:
				kept = append(kept, s)
			}
		}
		pending = kept
		time.Sleep(time.Millisecond)
	}
}

// close stops taking samples; wait for run to finish with <-l.done.
func (l *lagSampler) close() { close(l.in) }

func (l *lagSampler) stats() LagStats {
	p50, p95, p99, mx, _ := latencies(l.lags)
	_, _, g99, gmax, _ := latencies(l.gaps)
	return LagStats{Samples: len(l.lags), Lost: l.lost + int(l.dropped.Load()), P50: p50, P95: p95, P99: p99, Max: mx,
		PollGapP99: g99, PollGapMax: gmax}
}
