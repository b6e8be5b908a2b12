package projection

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Runner's Prometheus metrics.
type Metrics struct {
	eventsApplied *prometheus.CounterVec
	batchSize     prometheus.Histogram
	batchDuration prometheus.Histogram
	lagSeconds    *prometheus.GaugeVec
	lagPositions  *prometheus.GaugeVec
	active        prometheus.Gauge
	batchFailures prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: a private
// registry, for tests). Errors: reg refused a metric, e.g. one already registered.
//
//	projector_events_applied_total{projection}  events applied
//	projector_batch_size                        events per applied batch
//	projector_batch_duration_seconds            time to read, fold, write and commit a batch
//	projector_lag_seconds{projection}           recorded_at of the head minus that of the last event applied
//	                                            (while batches fail, at least the time since the first failure)
//	projector_lag_positions{projection}         global positions between the head and the last event applied
//	projector_active                            1 on the instance that holds the lock and applies, else 0
//	projector_batch_failures_total              batches that failed (each retry that fails again counts)
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		eventsApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "projector_events_applied_total",
			Help: "Events applied to each projection.",
		}, []string{"projection"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "projector_batch_size",
			Help:    "Events in each applied batch.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000},
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "projector_batch_duration_seconds",
			Help:    "Time to read, fold, write and commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
		}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "projector_lag_seconds",
			Help: "How far each projection is behind the newest event, in recorded_at time (0 when caught up).",
		}, []string{"projection"}),
		lagPositions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "projector_lag_positions",
			Help: "How far each projection is behind the newest event, in global positions (0 when caught up).",
		}, []string{"projection"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "projector_active",
			Help: "1 while this instance holds the projector lock and applies events, 0 on a standby.",
		}),
		batchFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "projector_batch_failures_total",
			Help: "Batches that failed to apply; a batch retried and failing again counts each time.",
		}),
	}
	for _, c := range []prometheus.Collector{m.eventsApplied, m.batchSize, m.batchDuration, m.lagSeconds, m.lagPositions, m.active, m.batchFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("projector metrics: %w", err)
		}
	}
	return m, nil
}

// init makes each projection's series exist from the start, at zero.
func (m *Metrics) init(ps []Projection) {
	for _, p := range ps {
		m.eventsApplied.WithLabelValues(p.Name())
		m.lagSeconds.WithLabelValues(p.Name())
		m.lagPositions.WithLabelValues(p.Name())
	}
}

// SetLag sets the lag gauges of a consumer of the tail that is not a
// projection (the publisher): it shows in the same series as the
// projections, so that one alert covers every reader of the event store.
func (m *Metrics) SetLag(name string, positions int64, seconds float64) {
	m.lagPositions.WithLabelValues(name).Set(float64(positions))
	m.lagSeconds.WithLabelValues(name).Set(seconds)
}

// AddApplied counts n events handled by a consumer of the tail that is not a
// projection (the publisher: events acknowledged by the broker).
func (m *Metrics) AddApplied(name string, n int) {
	m.eventsApplied.WithLabelValues(name).Add(float64(n))
}
