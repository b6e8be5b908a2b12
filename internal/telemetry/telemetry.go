// Package telemetry sets up logging and Prometheus metrics for both processes.
package telemetry

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/command"
)

// NewLogger returns a zerolog logger at level ("debug", "info", ...) writing JSON,
// or human-readable lines when format is "console".
func NewLogger(w io.Writer, level, format, process string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("LOG_LEVEL %q: want trace, debug, info, warn or error", level)
	}
	switch format {
	case "", "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	default:
		return zerolog.Logger{}, fmt.Errorf("LOG_FORMAT %q: want json or console", format)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("process", process).Logger(), nil
}

// NewRegistry returns a registry with the Go runtime and process collectors.
// A registry per process, not the global one, keeps tests independent.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// HTTPMetrics counts requests by route pattern, method and status.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	// series caches each label set's counter and histogram: WithLabelValues
	// hashes the labels and takes the vector's lock on every call, and each
	// request would otherwise pay that twice. Routes are patterns, methods
	// and statuses bounded sets, so the cache is small and never evicts.
	series sync.Map // httpLabels -> httpSeries
}

type httpLabels struct {
	route, method string
	status        int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewHTTPMetrics registers the HTTP series on reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight", Help: "Requests being handled: read from their connection, not yet answered (what a shutdown drains).",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

// RequestStarted implements httpapi.HTTPObserver.
func (m *HTTPMetrics) RequestStarted() { m.inFlight.Inc() }

// RequestEnded implements httpapi.HTTPObserver.
func (m *HTTPMetrics) RequestEnded() { m.inFlight.Dec() }

// RequestFinished implements httpapi.HTTPObserver.
func (m *HTTPMetrics) RequestFinished(route, method string, status int, d time.Duration) {
	key := httpLabels{route: route, method: method, status: status}
	v, ok := m.series.Load(key)
	if !ok {
		v, _ = m.series.LoadOrStore(key, httpSeries{
			requests: m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(route, method),
		})
	}
	s := v.(httpSeries)
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
}

// CommandMetrics counts the write side's outcomes.
type CommandMetrics struct {
	commands  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	replays   *prometheus.CounterVec
	appended  prometheus.Counter
	groups    prometheus.Histogram
	conflicts *prometheus.CounterVec
	recovered *prometheus.CounterVec
}

// NewCommandMetrics registers the command series on reg.
func NewCommandMetrics(reg prometheus.Registerer) *CommandMetrics {
	m := &CommandMetrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bank_commands_total", Help: "Commands by type and outcome (ok, replayed, rejected, invalid, conflict, canceled, error; a transfer that ran: completed, returned or pending).",
		}, []string{"command", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bank_command_duration_seconds", Help: "Command latency, retries included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"command"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bank_command_conflict_retries_total", Help: "Appends that lost a race and were decided again.",
		}, []string{"command"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bank_idempotent_replays_total", Help: "Requests answered from a stored Idempotency-Key response.",
		}, []string{"command"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bank_events_appended_total", Help: "Events appended to the event store.",
		}),
		groups: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bank_append_group_size", Help: "Commands stored per append: more than one when commands queued on one account were committed together.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bank_concurrency_conflicts_total", Help: "Commands that gave up after their bounded retries (409 concurrency_conflict).",
		}, []string{"command"}),
	}
	m.recovered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bank_transfer_recoveries_total", Help: "Transfers left pending by a dead process that the recovery loop finished, by how they ended (completed, returned).",
	}, []string{"status"})
	reg.MustRegister(m.commands, m.duration, m.retries, m.replays, m.appended, m.groups, m.conflicts, m.recovered)
	// Recoveries are rare: without series at zero, increase() over the first
	// one would show nothing, and the dashboard would query a name that no
	// scrape has shown.
	for _, status := range []command.TransferStatus{command.TransferCompleted, command.TransferReturned} {
		m.recovered.WithLabelValues(string(status))
	}
	return m
}

// TransferRecovered implements command.Observer.
func (m *CommandMetrics) TransferRecovered(status string) { m.recovered.WithLabelValues(status).Inc() }

// CommandFinished implements command.Observer.
func (m *CommandMetrics) CommandFinished(command, outcome string, d time.Duration) {
	m.commands.WithLabelValues(command, outcome).Inc()
	m.duration.WithLabelValues(command).Observe(d.Seconds())
	if outcome == "conflict" {
		m.conflicts.WithLabelValues(command).Inc()
	}
}

// ConflictRetried implements command.Observer.
func (m *CommandMetrics) ConflictRetried(command string) { m.retries.WithLabelValues(command).Inc() }

// IdempotentReplay implements command.Observer.
func (m *CommandMetrics) IdempotentReplay(command string) { m.replays.WithLabelValues(command).Inc() }

// Appended implements command.Observer.
func (m *CommandMetrics) Appended(commands, events int) {
	m.appended.Add(float64(events))
	m.groups.Observe(float64(commands))
}

// poolCollector exposes pgxpool statistics, read at scrape time.
type poolCollector struct {
	pool                                                     *pgxpool.Pool
	total, idle, acquired, maxConns, acquireCount, waitCount *prometheus.Desc
	acquireDuration, emptyAcquire                            *prometheus.Desc
}

// RegisterPool exposes pool's statistics under the label pool=name.
func RegisterPool(reg prometheus.Registerer, name string, pool *pgxpool.Pool) {
	labels := prometheus.Labels{"pool": name}
	d := func(n, help string) *prometheus.Desc { return prometheus.NewDesc(n, help, nil, labels) }
	reg.MustRegister(&poolCollector{
		pool:            pool,
		total:           d("pgxpool_connections", "Connections open."),
		idle:            d("pgxpool_idle_connections", "Idle connections."),
		acquired:        d("pgxpool_acquired_connections", "Connections in use."),
		maxConns:        d("pgxpool_max_connections", "Pool size limit."),
		acquireCount:    d("pgxpool_acquires_total", "Successful acquires."),
		waitCount:       d("pgxpool_empty_acquire_waits_total", "Acquires that waited for a connection."),
		acquireDuration: d("pgxpool_acquire_duration_seconds_total", "Time spent acquiring connections."),
		emptyAcquire:    d("pgxpool_canceled_acquires_total", "Acquires canceled by their context."),
	})
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.maxConns, c.acquireCount, c.waitCount, c.acquireDuration, c.emptyAcquire} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.maxConns, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquireCount, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waitCount, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.acquireDuration, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(c.emptyAcquire, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
}

// TransferMetrics shows the transfer sagas not yet finished.
type TransferMetrics struct {
	pending, oldest prometheus.Gauge
}

// NewTransferMetrics registers the transfer backlog series on reg.
func NewTransferMetrics(reg prometheus.Registerer) *TransferMetrics {
	m := &TransferMetrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bank_transfers_pending", Help: "Transfers begun (step 1) and not yet completed or returned.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bank_transfer_oldest_pending_seconds", Help: "Age of the oldest pending transfer (0 when none).",
		}),
	}
	reg.MustRegister(m.pending, m.oldest)
	return m
}

// Backlog sets the pending count and the oldest one's age.
func (m *TransferMetrics) Backlog(pending int64, oldest time.Duration) {
	m.pending.Set(float64(pending))
	m.oldest.Set(oldest.Seconds())
}
