package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole pipeline, tiny: a durable private server, the
// real binaries, every step at one client for well under a second each, and
// checks that the report has every section and figure.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Run(ctx, Config{
		Accounts: 20, Clients: []int{1}, Duration: 600 * time.Millisecond, Warmup: 200 * time.Millisecond,
		HotAccounts: 2, HotClients: 2, QueryClients: 1, RatioClients: 1,
		LoadSizes: []int{10, 150}, LoadBudget: 50 * time.Millisecond, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}

	dir := t.TempDir()
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	md := readFile(t, filepath.Join(dir, "results.md"))
	for _, section := range []string{"## Targets", "## Deposits", "## Transfers", "## Hot accounts", "## Queries", "## Projection lag",
		"## Load time", "## Rebuild and COPY", "## Peak memory", "chart.png"} {
		if !strings.Contains(md, section) {
			t.Errorf("results.md has no %q", section)
		}
	}
	var back Report
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "results.json"))), &back); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if img, err := png.Decode(strings.NewReader(readFile(t, filepath.Join(dir, "chart.png")))); err != nil {
		t.Errorf("chart.png: %v", err)
	} else if b := img.Bounds(); b.Dx() != 960 || b.Dy() != 400 {
		t.Errorf("chart.png is %dx%d; want 960x400", b.Dx(), b.Dy())
	}
	svg := readFile(t, filepath.Join(dir, "chart.svg"))
	if !strings.HasPrefix(svg, "<svg") {
		t.Errorf("chart.svg does not start with <svg: %.40q", svg)
	}
	// Well-formed XML, so that a browser shows it rather than an error.
	for d := xml.NewDecoder(strings.NewReader(svg)); ; {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Errorf("chart.svg: %v", err)
			break
		}
	}

	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s: missing from the report", what)
		}
	}
	check("deposit row", len(back.Deposits) == 1)
	check("transfers", back.Transfers.Service.Throughput > 0 && back.Transfers.Service.Errors == 0 && back.Transfers.RatioToDeposits > 0)
	if len(back.Deposits) == 1 {
		d := back.Deposits[0]
		check("service deposits", d.Service.OK > 0 && d.Service.P99 > 0 && d.Service.Usage != nil)
		for name, s := range map[string]Stats{"pgbench same SQL": d.PgbenchDeposit, "pgbench insert": d.PgbenchInsert} {
			check(name, s.OK > 0 || s.Skipped != "")
			if s.Errors > 0 {
				t.Errorf("%s: %d errors: %v", name, s.Errors, s.ErrorKinds)
			}
		}
		if d.Service.Errors > 0 {
			t.Errorf("service deposits: %d errors: %v", d.Service.Errors, d.Service.ErrorKinds)
		}
	}
	check("in-process deposits", len(back.Deposits) == 1 && back.Deposits[0].InProcess != nil && back.Deposits[0].InProcess.OK > 0)
	check("hot run", back.Hot.Service.OK > 0)
	check("queries", len(back.Queries) == 2 && back.Queries[0].Service.OK > 0 && back.Queries[1].Service.OK > 0)
	check("projection lag", back.Lag.Samples > 0 && back.Lag.Projector.Batches > 0)
	check("load times", len(back.Loads) == 3 && back.Loads[0].Loads > 0)
	check("COPY", back.Rebuild.CopyInPerSec > 0 && back.Rebuild.CopyOutPerSec > 0)
	check("rebuild status", back.Rebuild.Status != "")
	check("memory", back.Memory.APIPeakMB > 0 && back.Memory.ProjectorPeakMB > 0)
	check("targets", len(back.Targets) >= 3)
	// The CPU targets need no pgbench: every smoke run has them.
	for _, want := range []string{"api CPU per deposit", "api CPU per GET /accounts/{id}"} {
		check("target "+want, slices.ContainsFunc(back.Targets, func(t Target) bool { return strings.HasPrefix(t.Name, want) && t.Got > 0 }))
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLatencies(t *testing.T) {
	t.Parallel()
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	p50, p95, p99, mx, mean := latencies(lat)
	if p50 != 50 || p95 != 95 || p99 != 99 || mx != 100 || mean != 50.5 {
		t.Fatalf("latencies = %v %v %v %v %v; want 50 95 99 100 50.5", p50, p95, p99, mx, mean)
	}
	if a, b, c, d, e := latencies(nil); a+b+c+d+e != 0 {
		t.Fatal("latencies of nothing are not zero")
	}
}

func TestRecorderKeepsTheWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	r := newRecorder()
	r.from, r.to = t0, t0.Add(2*time.Second)
	r.add(t0.Add(-time.Millisecond), time.Millisecond, "") // warm-up: left out
	r.add(t0.Add(time.Second), 2*time.Millisecond, "")
	r.add(t0.Add(time.Second), 4*time.Millisecond, "409 concurrency_conflict")
	r.add(t0.Add(3*time.Second), time.Millisecond, "") // after the end: left out
	s := r.stats()
	if s.Requests != 2 || s.OK != 1 || s.Errors != 1 || s.Throughput != 0.5 || s.ErrorKinds["409 concurrency_conflict"] != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestReadPgbenchLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prefix := filepath.Join(dir, "x-c2")
	// client_id transaction_no time script_no time_epoch time_us
	logs := map[string]string{
		".100":   "0 0 1500 0 1000 100000\n0 1 2500 0 1001 500000\n",
		".100.1": "1 0 failed 0 1001 600000\n1 1 900 0 1005 0\n",
	}
	for suffix, body := range logs {
		if err := os.WriteFile(prefix+suffix, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := newRecorder()
	r.from, r.to = time.Unix(1000, 500_000_000), time.Unix(1002, 0)
	if err := readPgbenchLogs(prefix, r); err != nil {
		t.Fatal(err)
	}
	s := r.stats()
	if s.OK != 1 || s.Errors != 1 || s.P50 != 2.5 || s.ErrorKinds["pgbench failed"] != 1 {
		t.Fatalf("stats = %+v; want the 2.5 ms transaction and the failed one", s)
	}
}

func TestPrometheusText(t *testing.T) {
	t.Parallel()
	text := []byte(`# HELP bank_command_conflict_retries_total Appends that lost a race.
bank_command_conflict_retries_total{command="deposit"} 7
bank_command_conflict_retries_total{command="withdraw"} 3
bank_command_conflict_retries_total_extra 100
projector_batch_duration_seconds_bucket{le="0.001"} 10
projector_batch_duration_seconds_bucket{le="0.002"} 90
projector_batch_duration_seconds_bucket{le="+Inf"} 100
projector_batch_duration_seconds_sum 0.2
projector_batch_duration_seconds_count 100
`)
	if got := promSum(text, "bank_command_conflict_retries_total"); got != 10 {
		t.Errorf("promSum = %v; want 10", got)
	}
	h := promHistogram(text, "projector_batch_duration_seconds")
	if h.count != 100 || h.quantile(0.5) != 0.002 || h.quantile(0.05) != 0.001 {
		t.Errorf("histogram = %+v, p50 %v", h, h.quantile(0.5))
	}
	if d := h.minus(h); d.count != 0 || d.quantile(0.99) != 0 {
		t.Errorf("h - h = %+v", d)
	}
}

func TestDepositScriptIsTheStoresSQL(t *testing.T) {
	t.Parallel()
	s := depositScript()
	if strings.Contains(s, "$") {
		t.Errorf("a $n parameter is left in the pgbench script:\n%s", s)
	}
	for _, want := range []string{"FROM snapshots", "md5(:n::text)::uuid", `\aset`, ":version + 1", "INSERT INTO events"} {
		if !strings.Contains(s, want) {
			t.Errorf("deposit script lacks %q:\n%s", want, s)
		}
	}
}

func TestAccountIDIsMD5(t *testing.T) {
	t.Parallel()
	// SELECT md5('1')::uuid
	if got := accountID(1).String(); got != "c4ca4238-a0b9-2382-0dcc-509a6f75849b" {
		t.Fatalf("accountID(1) = %s", got)
	}
}

func TestChartAndMarkdownOfAnEmptyReport(t *testing.T) {
	t.Parallel()
	r := &Report{Deposits: []DepositRow{{Clients: 1, Service: Stats{OK: 1, Throughput: 900, P99: 3}, PgbenchDeposit: Stats{Skipped: "no pgbench"}}}}
	if _, err := r.ChartPNG(); err != nil {
		t.Fatal(err)
	}
	svg, err := r.ChartSVG()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("service")) {
		t.Errorf("the SVG chart does not start with <svg or has no legend: %.60q", svg)
	}
	if md := r.Markdown(); !strings.Contains(md, "skipped") {
		t.Error("a skipped baseline is not said so")
	}
	if niceMax(0) != 1 || niceMax(3100) != 5000 || niceMax(100) != 100 {
		t.Errorf("niceMax: %v %v %v", niceMax(0), niceMax(3100), niceMax(100))
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	// 20% of a core at 2,000 deposits/s is 100 µs of api CPU each (at the
	// target: met); 10% at 5,000 GETs/s is 20 µs.
	busy := func(apiPct float64) *Usage { return &Usage{APICPU: apiPct, MachineBusy: 99} }
	full := Report{
		Deposits: []DepositRow{
			{Clients: 16, Service: Stats{OK: 1, Throughput: 2000, P99: 10, Usage: busy(20)}, TPSRatio: 1.1, P99Ratio: 2.5,
				PgbenchDeposit: Stats{OK: 1, Throughput: 1800, P99: 4}, PgbenchInsert: Stats{OK: 1, Throughput: 2400}},
			{Clients: 64, Service: Stats{OK: 1, Throughput: 3000, Usage: busy(30)}, TPSRatio: 0.9,
				PgbenchDeposit: Stats{OK: 1, Throughput: 3300}},
		},
		Queries:   []QueryRow{{Name: "account", Clients: 16, Service: Stats{OK: 1, Throughput: 5000, Usage: busy(10)}, TPSRatio: 0.4}},
		Hot:       HotStats{Clients: 64, Accounts: 10, Service: Stats{OK: 1, Throughput: 2700}, RatioToDeposits: 0.9},
		Transfers: TransferStats{Clients: 16, Service: Stats{OK: 1, Throughput: 1000}, RatioToDeposits: 0.5},
		Lag:       LagStats{Rate: 1500, Samples: 10, P99: 25},
		Memory:    Memory{APIPeakMB: 40},
	}
	full.finish(Config{RatioClients: 16, HotClients: 64})
	want := map[string]struct {
		got float64
		met bool
	}{
		"api CPU per deposit (16 clients)":                                 {100, true},
		"api CPU per GET /accounts/{id} (16 clients)":                      {20, true},
		"deposit throughput / pgbench same SQL (16 clients)":               {1.1, true},
		"deposit throughput / pgbench same SQL (64 clients)":               {0.9, false},
		"deposit p99 / pgbench same SQL p99 (16 clients)":                  {2.5, false},
		"deposit throughput / pgbench 1-event INSERT (16 clients)":         {0.83, true},
		"GET /accounts/{id} / pgbench select of the same row (16 clients)": {0.4, false},
		"deposits on 10 hot accounts / on random accounts (64 clients)":    {0.9, true},
		"transfer throughput / deposit throughput (16 clients)":            {0.5, true},
		"projection lag p99 at 1500 deposits/s (half the best rate)":       {25, false},
		"api peak RSS": {40, true},
	}
	if len(full.Targets) != len(want) {
		t.Errorf("%d targets; want %d: %+v", len(full.Targets), len(want), full.Targets)
	}
	for _, tg := range full.Targets {
		w, ok := want[tg.Name]
		if !ok || tg.Got != w.got || tg.Met != w.met {
			t.Errorf("target %q: got %v met %v; want %+v (known: %v)", tg.Name, tg.Got, tg.Met, w, ok)
		}
		// Where the time went is the run's own: the service's usage.
		if strings.HasPrefix(tg.Name, "api CPU per deposit") && !strings.Contains(tg.Evidence, "api 20%") {
			t.Errorf("target %q: evidence %q is not the deposit run's", tg.Name, tg.Evidence)
		}
	}

	// Only the deposits at 16 clients, without pgbench (-steps deposits
	// -clients 16): the targets that need the other runs are left out.
	part := Report{Deposits: []DepositRow{{Clients: 16, Service: Stats{OK: 1, Throughput: 2000, Usage: busy(20)},
		PgbenchDeposit: Stats{Skipped: "no pgbench"}, PgbenchInsert: Stats{Skipped: "no pgbench"}}}}
	part.finish(Config{RatioClients: 16, HotClients: 64})
	var names []string
	for _, tg := range part.Targets {
		names = append(names, tg.Name)
	}
	if got := strings.Join(names, "; "); got != "api CPU per deposit (16 clients); api peak RSS" {
		t.Errorf("targets of a partial run: %s", got)
	}
}
