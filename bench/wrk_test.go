package bench

import (
	"encoding/json"
	"testing"
)

// TestWrkReport: wrk.lua's report becomes the run's figures: answers other
// than 2xx are errors by status and problem code, socket errors are errors
// too, throughput counts the successes only, latencies are in ms.
func TestWrkReport(t *testing.T) {
	t.Parallel()
	var r wrkResult
	report := `{"duration_us":2000000,"requests":1000,"errors":{"connect":0,"read":2,"write":0,"status":10,"timeout":1},` +
		`"p50_us":1500,"p95_us":4000,"p99_us":9000,"max_us":20000,"mean_us":1800.5,"kinds":{"422 insufficient_funds":7,"409 concurrency_conflict":3}}`
	if err := json.Unmarshal([]byte(report), &r); err != nil {
		t.Fatal(err)
	}
	s := r.stats(Usage{})
	if s.Requests != 1003 || s.OK != 990 || s.Errors != 13 || s.Throughput != 495 {
		t.Errorf("requests %d ok %d errors %d throughput %v; want 1003, 990, 13, 495", s.Requests, s.OK, s.Errors, s.Throughput)
	}
	want := map[string]int{"422 insufficient_funds": 7, "409 concurrency_conflict": 3, "transport (connect, read, write, timeout)": 3}
	for k, n := range want {
		if s.ErrorKinds[k] != n {
			t.Errorf("error kind %q: %d, want %d (all: %v)", k, s.ErrorKinds[k], n, s.ErrorKinds)
		}
	}
	if s.P50 != 1.5 || s.P95 != 4 || s.P99 != 9 || s.Max != 20 || s.Mean != 1.801 {
		t.Errorf("latencies %v %v %v %v %v", s.P50, s.P95, s.P99, s.Max, s.Mean)
	}
}
