package telemetry_test

import (
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evbank/bank/internal/telemetry"
)

// The cached series are the registry's own: each request is counted under
// its labels, and a new label set still makes its series.
func TestHTTPMetricsCountsByLabels(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := telemetry.NewHTTPMetrics(reg)
	for range 3 {
		m.RequestFinished("/accounts/{id}", http.MethodGet, http.StatusOK, time.Millisecond)
	}
	m.RequestFinished("/accounts/{id}", http.MethodGet, http.StatusNotFound, time.Millisecond)
	m.RequestFinished("/accounts/{id}/deposit", http.MethodPost, http.StatusOK, 2*time.Millisecond)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"http_requests_total{method=GET,route=/accounts/{id},status=200}":          3,
		"http_requests_total{method=GET,route=/accounts/{id},status=404}":          1,
		"http_requests_total{method=POST,route=/accounts/{id}/deposit,status=200}": 1,
		"http_request_duration_seconds{method=GET,route=/accounts/{id}}":           4,
		"http_request_duration_seconds{method=POST,route=/accounts/{id}/deposit}":  1,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("series %v, want %v", got, want)
	}
}

// BenchmarkRequestFinished is the metrics' share of every request.
func BenchmarkRequestFinished(b *testing.B) {
	m := telemetry.NewHTTPMetrics(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.RequestFinished("/accounts/{id}/deposit", http.MethodPost, http.StatusOK, time.Millisecond)
	}
}
