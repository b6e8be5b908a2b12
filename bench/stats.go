package bench

import (
	"math"
	"slices"
	"time"
)

// Stats are the outcome of one measured run, HTTP or pgbench alike.
type Stats struct {
	// Requests completed in the measured window (HTTP requests or pgbench
	// transactions), OK the successful ones.
	Requests int `json:"requests"`
	OK       int `json:"ok"`
	Errors   int `json:"errors"`
	// ErrorKinds counts errors by status and problem code (HTTP) or message.
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	Seconds    float64        `json:"seconds"`
	// Throughput is successful requests per second.
	Throughput float64 `json:"throughput"`
	// Latencies in milliseconds, over every request in the window.
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
	// Usage is what the machine did meanwhile.
	Usage *Usage `json:"usage,omitempty"`
	// Skipped says why the run did not happen; the figures are then zero.
	Skipped string `json:"skipped,omitempty"`
}

// recorder collects the requests that end inside a window.
type recorder struct {
	from, to time.Time
	lat      []time.Duration
	ok, errs int
	kinds    map[string]int
}

func newRecorder() *recorder { return &recorder{kinds: map[string]int{}} }

// add records one request ending at end; kind "" means success, a negative
// d an unknown latency.
func (r *recorder) add(end time.Time, d time.Duration, kind string) {
	if r.from.IsZero() || end.Before(r.from) || (!r.to.IsZero() && end.After(r.to)) {
		return
	}
	if d >= 0 {
		r.lat = append(r.lat, d)
	}
	if kind == "" {
		r.ok++
		return
	}
	r.errs++
	r.kinds[kind]++
}

// stats summarises the window [from, to].
func (r *recorder) stats() Stats {
	s := Stats{Requests: r.ok + r.errs, OK: r.ok, Errors: r.errs}
	if len(r.kinds) > 0 {
		s.ErrorKinds = r.kinds
	}
	if !r.from.IsZero() && r.to.After(r.from) {
		s.Seconds = round2(r.to.Sub(r.from).Seconds())
		s.Throughput = round1(float64(r.ok) / r.to.Sub(r.from).Seconds())
	}
	s.P50, s.P95, s.P99, s.Max, s.Mean = latencies(r.lat)
	return s
}

// latencies returns the 50th, 95th and 99th percentiles (nearest rank), the
// maximum and the mean, in milliseconds. It sorts lat.
func latencies(lat []time.Duration) (p50, p95, p99, maxMS, mean float64) {
	if len(lat) == 0 {
		return 0, 0, 0, 0, 0
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return ms(percentile(lat, 0.50)), ms(percentile(lat, 0.95)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1]), ms(sum / time.Duration(len(lat)))
}

// percentile is the nearest-rank percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round2(v float64) float64 { return math.Round(v*100) / 100 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// ratio is a/b rounded to two places, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round2(a / b)
}
