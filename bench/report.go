package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report is everything one Run measured. It is written as results.json.
type Report struct {
	Started   time.Time     `json:"started"`
	Machine   Machine       `json:"machine"`
	Settings  Settings      `json:"settings"`
	Seed      SeedStats     `json:"seed"`
	Deposits  []DepositRow  `json:"deposits"`
	Transfers TransferStats `json:"transfers"`
	Hot       HotStats      `json:"hot"`
	Queries   []QueryRow    `json:"queries"`
	Lag       LagStats      `json:"lag"`
	Loads     []LoadTime    `json:"load_times"`
	Rebuild   RebuildStats  `json:"rebuild"`
	Memory    Memory        `json:"memory"`
	Targets   []Target      `json:"targets"`
}

// Machine describes where the figures come from.
type Machine struct {
	CPUs     int    `json:"cpus"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
	Postgres string `json:"postgres"`
}

// Settings are the run's parameters.
type Settings struct {
	Accounts      int               `json:"accounts"`
	Clients       []int             `json:"clients"`
	DurationS     float64           `json:"duration_s"`
	WarmupS       float64           `json:"warmup_s"`
	QueryClients  int               `json:"query_clients"`
	RatioClients  int               `json:"ratio_clients"`
	Durable       bool              `json:"durable"`
	APIEnv        map[string]string `json:"api_env"`
	ProjectorEnv  map[string]string `json:"projector_env"`
	ElapsedS      float64           `json:"elapsed_s"`
	PgbenchMode   string            `json:"pgbench_mode"`
	DepositScript string            `json:"deposit_script"`
}

// SeedStats is the opening of the accounts through the api.
type SeedStats struct {
	Accounts  int     `json:"accounts"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
}

// DepositRow is the deposit runs at one client count.
type DepositRow struct {
	Clients int `json:"clients"`
	// Service is POST /accounts/{id}/deposit through the api.
	Service Stats `json:"service"`
	// PgbenchDeposit is the deposit's own SQL; PgbenchInsert a bare
	// single-event INSERT into a fresh stream.
	PgbenchDeposit Stats `json:"pgbench_deposit"`
	PgbenchInsert  Stats `json:"pgbench_insert"`
	// InProcess, at the ratio client count only, is command.Service called
	// in the benchmark's process: the service without HTTP.
	InProcess *Stats `json:"in_process,omitempty"`
	// Ratios of the service to PgbenchDeposit.
	TPSRatio float64 `json:"tps_ratio"`
	P99Ratio float64 `json:"p99_ratio"`
}

// TransferStats is POST /transfers between random accounts.
type TransferStats struct {
	Clients int   `json:"clients"`
	Service Stats `json:"service"`
	// RatioToDeposits is transfers/s over deposits/s at the same clients.
	RatioToDeposits float64 `json:"ratio_to_deposits"`
}

// HotStats is the hot-account run: many clients on a few accounts.
type HotStats struct {
	Clients           int     `json:"clients"`
	Accounts          int     `json:"accounts"`
	Service           Stats   `json:"service"`
	ConflictRetries   float64 `json:"conflict_retries"`
	RetriesPerDeposit float64 `json:"retries_per_deposit"`
	GaveUp            float64 `json:"gave_up_409"`
	// CommandsPerAppend is the mean group the api appended in one statement
	// (bank_append_group_size): how much group commit happened.
	CommandsPerAppend float64 `json:"commands_per_append"`
	// RatioToDeposits is the hot run's deposits/s over the random-account
	// deposits/s at the same clients (0 when that run was left out): what
	// queueing on a few accounts costs.
	RatioToDeposits float64 `json:"ratio_to_deposits"`
}

// QueryRow is one query endpoint beside pgbench selecting the same rows.
type QueryRow struct {
	Name     string  `json:"name"`
	Path     string  `json:"path"`
	Clients  int     `json:"clients"`
	Service  Stats   `json:"service"`
	Pgbench  Stats   `json:"pgbench"`
	TPSRatio float64 `json:"tps_ratio"`
	P99Ratio float64 `json:"p99_ratio"`
}

// Memory is the peak resident set (VmHWM) of the processes.
type Memory struct {
	APIPeakMB       float64 `json:"api_peak_mb"`
	ProjectorPeakMB float64 `json:"projector_peak_mb"`
}

// Target is one goal of the service and whether this run met it.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
	// Evidence is where the machine's time went in the run behind the figure.
	Evidence string `json:"evidence,omitempty"`
}

func newReport(cfg Config) *Report {
	gov, cpus := goInfo()
	return &Report{
		Started: time.Now().UTC().Truncate(time.Second),
		Machine: Machine{CPUs: cpus, Kernel: kernelInfo(), Go: gov},
		Settings: Settings{
			Accounts: cfg.Accounts, Clients: cfg.Clients, DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(),
			QueryClients: cfg.QueryClients, RatioClients: cfg.RatioClients, Durable: true,
			PgbenchMode: "pgbench -M prepared -n", DepositScript: depositScript(),
		},
	}
}

// finish evaluates the targets of issue 13 (16 clients, RatioClients,
// unless stated; "64 clients" is HotClients, the hot run's count). A
// target is checked only when the runs it needs happened: one whose run was
// left out (-steps, -clients, no pgbench) is left out too, not missed.
func (r *Report) finish(cfg Config) {
	r.Settings.ElapsedS = round1(time.Since(r.Started).Seconds())
	depAt := func(c int) *DepositRow {
		for i := range r.Deposits {
			if r.Deposits[i].Clients == c {
				return &r.Deposits[i]
			}
		}
		return nil
	}
	var account *QueryRow
	for i := range r.Queries {
		if r.Queries[i].Name == "account" {
			account = &r.Queries[i]
		}
	}
	at := func(c int) string { return fmt.Sprintf(" (%d clients)", c) }
	// Evidence is always the service's run behind the figure: where its
	// time went is what limits it.
	add := func(name, want string, got float64, unit string, met bool, u *Usage) {
		r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: got, Unit: unit, Met: met, Evidence: evidence(u)})
	}
	dep := depAt(cfg.RatioClients)

	// CPU per request: the usage tables' own figures, not measured again.
	if dep != nil {
		if us, ok := apiMicros(dep.Service); ok {
			add("api CPU per deposit"+at(dep.Clients), "<= 100", us, "µs", us <= 100, dep.Service.Usage)
		}
	}
	if account != nil {
		if us, ok := apiMicros(account.Service); ok {
			add("api CPU per GET /accounts/{id}"+at(account.Clients), "<= 40", us, "µs", us <= 40, account.Service.Usage)
		}
	}

	for _, c := range slices.Compact([]int{cfg.RatioClients, cfg.HotClients}) {
		if d := depAt(c); d != nil && d.PgbenchDeposit.Skipped == "" {
			add("deposit throughput / pgbench same SQL"+at(c), ">= 1.0", d.TPSRatio, "x", d.TPSRatio >= 1, d.Service.Usage)
		}
	}
	if dep != nil && dep.PgbenchDeposit.Skipped == "" {
		add("deposit p99 / pgbench same SQL p99"+at(dep.Clients), "<= 2.0", dep.P99Ratio, "x",
			dep.P99Ratio > 0 && dep.P99Ratio <= 2, dep.Service.Usage)
	}
	// The floor: a deposit to a cached account is one durable append.
	if dep != nil && dep.PgbenchInsert.Skipped == "" {
		x := ratio(dep.Service.Throughput, dep.PgbenchInsert.Throughput)
		add("deposit throughput / pgbench 1-event INSERT"+at(dep.Clients), ">= 0.80", x, "x", x >= 0.8, dep.Service.Usage)
	}
	if account != nil && account.Pgbench.Skipped == "" {
		add("GET /accounts/{id} / pgbench select of the same row"+at(account.Clients), ">= 0.50", account.TPSRatio, "x",
			account.TPSRatio >= 0.5, account.Service.Usage)
	}
	if h := r.Hot; h.Clients > 0 {
		if d := depAt(h.Clients); d != nil && d.Service.Throughput > 0 {
			add(fmt.Sprintf("deposits on %d hot accounts / on random accounts%s", h.Accounts, at(h.Clients)), ">= 0.80",
				h.RatioToDeposits, "x", h.RatioToDeposits >= 0.8, h.Service.Usage)
		}
	}
	if t := r.Transfers; t.Service.Throughput > 0 && t.RatioToDeposits > 0 {
		add("transfer throughput / deposit throughput"+at(t.Clients), ">= 0.45", t.RatioToDeposits, "x",
			t.RatioToDeposits >= 0.45, t.Service.Usage)
	}
	if r.Lag.Samples > 0 {
		add(fmt.Sprintf("projection lag p99 at %d deposits/s (half the best rate)", r.Lag.Rate), "<= 20", r.Lag.P99, "ms",
			r.Lag.P99 <= 20, r.Lag.Deposits.Usage)
	}
	r.Targets = append(r.Targets, Target{Name: "api peak RSS", Want: "<= 150", Got: r.Memory.APIPeakMB, Unit: "MB",
		Met: r.Memory.APIPeakMB > 0 && r.Memory.APIPeakMB <= 150})
}

// apiMicros is the api's CPU per successful request of s in whole
// microseconds, as the usage tables print it; false when s has no usage.
func apiMicros(s Stats) (float64, bool) {
	if s.Usage == nil || s.Throughput <= 0 {
		return 0, false
	}
	return math.Round(perRequestMicros(s.Usage.APICPU, s)), true
}

// perRequestMicros turns a process's CPU (% of one core) over run s into
// microseconds per successful request.
func perRequestMicros(pct float64, s Stats) float64 { return pct / 100 / s.Throughput * 1e6 }

// evidence says where the machine's time went.
func evidence(u *Usage) string {
	if u == nil {
		return ""
	}
	s := fmt.Sprintf("CPU busy %.0f%% of %d cores (api %.0f%%, postgres %.0f%%, projector %.0f%%, load generator %.0f%%, other processes %.0f%% of a core), iowait %.0f%%",
		u.MachineBusy, max(goInfoCPUs(), 1), u.APICPU, u.PostgresCPU, u.ProjectorCPU, u.ClientCPU, u.OtherCPU, u.MachineIOWait)
	if p := u.APIPool; p.Acquires > 0 {
		s += fmt.Sprintf("; api pool: %.0f%% of acquires waited for a connection, %.2f ms per acquire", 100*p.Waited/p.Acquires, 1000*p.AcquireSeconds/p.Acquires)
	}
	if rq := u.RunQueue; rq != (RunQueueWaits{}) {
		s += fmt.Sprintf("; waiting for a core: api %.0f, postgres %.0f, projector %.0f ms/s", rq.API, rq.Postgres, rq.Projector)
	}
	if w := topWaits(u.Waits, 3); w != "" {
		s += "; sessions: " + w
	}
	return s
}

func goInfoCPUs() int { _, n := goInfo(); return n }

// WriteFiles writes results.md, results.json, chart.svg and chart.png into dir.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	png, err := r.ChartPNG()
	if err != nil {
		return err
	}
	svg, err := r.ChartSVG()
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"results.md":   []byte(r.Markdown()),
		"results.json": append(js, '\n'),
		"chart.svg":    svg,
		"chart.png":    png,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Markdown renders the report as tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmark results\n\n")
	p("%s; %s, %d CPUs, %s, %s with fsync and synchronous_commit on (a private server, started for the run).\n",
		r.Started.Format(time.RFC3339), r.Machine.Kernel, r.Machine.CPUs, r.Machine.Go, r.Machine.Postgres)
	p("%d accounts opened through the api in %.1f s (%.0f/s): the api deposits to the first %d, the baselines that write "+
		"to the others, so that the api stays the only writer of its accounts (as in production; a writer behind its back "+
		"would make its cached states stale, each costing a failed INSERT and a reload). Each run: %.0f s warm-up, then %.0f s measured; "+
		"the projector runs throughout; the server is checkpointed and the projector caught up before each run. "+
		"Baselines: `%s` against the same server. The api's pool: DB_MAX_CONNS=%s, as many server connections as pgbench opens "+
		"for its largest run. Whole benchmark: %.0f s.\n\n",
		r.Seed.Accounts, r.Seed.Seconds, r.Seed.PerSecond, r.Settings.Accounts, r.Settings.WarmupS, r.Settings.DurationS,
		r.Settings.PgbenchMode, r.Settings.APIEnv["DB_MAX_CONNS"], r.Settings.ElapsedS)

	p("## Targets\n\n")
	p("%s", header("target", "want", "got", "met", "where the time went"))
	for _, t := range r.Targets {
		p("| %s | %s %s | %s %s | %s | %s |\n", t.Name, t.Want, t.Unit, num(t.Got), t.Unit, yesNo(t.Met), t.Evidence)
	}

	p("\n## Deposits\n\n`POST /accounts/{id}/deposit` to random accounts, closed loop (each client waits for its answer), keep-alive. " +
		"\"pgbench same SQL\" runs the store's load query (snapshot and tail) then the INSERT of the next version, " +
		"each statement committed on its own, as the service does for an account it has not cached; " +
		"\"1-event INSERT\" appends one event to a fresh stream: the database work of a deposit to a cached account. " +
		"Ratios are service / same SQL.\n\n")
	p("%s", header("clients", "service tx/s", "p50 ms", "p95 ms", "p99 ms", "errors", "same SQL tx/s", "p50 ms", "p99 ms",
		"ratio tx/s", "ratio p99", "1-event INSERT tx/s", "p99 ms"))
	for _, d := range r.Deposits {
		p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", d.Clients,
			num(d.Service.Throughput), num(d.Service.P50), num(d.Service.P95), num(d.Service.P99), errs(d.Service),
			tps(d.PgbenchDeposit), num(d.PgbenchDeposit.P50), num(d.PgbenchDeposit.P99), num(d.TPSRatio), num(d.P99Ratio),
			tps(d.PgbenchInsert), num(d.PgbenchInsert.P99))
	}
	p("\nWhere the time went. CPU in %% of one core; machine busy and iowait in %% of all %d cores; \"other processes\" is CPU "+
		"used outside the benchmark (the machine may be shared: read throughput with it in mind, CPU per request hardly depends on it); "+
		"WAL fsyncs per committed write from pg_stat_wal; sessions: what active PostgreSQL sessions were doing, sampled every 50 ms "+
		"(CPU: running or waiting for a core):\n\n", r.Machine.CPUs)
	p("%s", header("clients", "run", "api", "projector", "postgres", "load generator", "other processes", "machine busy", "iowait", "CPU µs per request: api + postgres + projector / load generator", "WAL fsyncs / write", "sessions"))
	for _, d := range r.Deposits {
		for _, run := range []struct {
			name string
			s    Stats
		}{{"service", d.Service}, {"same SQL", d.PgbenchDeposit}, {"1-event INSERT", d.PgbenchInsert}} {
			p("%s", usageRow(fmt.Sprint(d.Clients), run.name, run.s))
		}
	}
	for _, d := range r.Deposits {
		if ip := d.InProcess; ip != nil {
			p("\nWithout HTTP: at %d clients, `command.Service.Deposit` called from goroutines in the benchmark's own process "+
				"(its CPU shows as the load generator's) made %s deposits/s, p50 %s ms, p99 %s ms, errors %s: "+
				"the HTTP layer and the load generator's HTTP client account for the rest of the gap.\n\n",
				d.Clients, num(ip.Throughput), num(ip.P50), num(ip.P99), errs(*ip))
			p("%s", header("clients", "run", "api", "projector", "postgres", "load generator", "other processes", "machine busy", "iowait", "CPU µs per request: api + postgres + projector / load generator", "WAL fsyncs / write", "sessions"))
			p("%s", usageRow(fmt.Sprint(d.Clients), "in-process", *ip))
		}
	}

	if t := r.Transfers; t.Service.Throughput > 0 {
		p("\n## Transfers\n\n`POST /transfers` of 0.01 between two random accounts, closed loop: the checks of both " +
			"accounts and two single-stream appends (TransferSent, then TransferReceived) per transfer.\n\n")
		p("%s", header("clients", "tx/s", "p50 ms", "p95 ms", "p99 ms", "errors", "ratio to deposits"))
		p("| %d | %s | %s | %s | %s | %s | %s |\n\n", t.Clients, num(t.Service.Throughput), num(t.Service.P50),
			num(t.Service.P95), num(t.Service.P99), errs(t.Service), num(t.RatioToDeposits))
		p("%s", header("clients", "run", "api", "projector", "postgres", "load generator", "other processes", "machine busy", "iowait", "CPU µs per request: api + postgres + projector / load generator", "WAL fsyncs / write", "sessions"))
		p("%s", usageRow(fmt.Sprint(t.Clients), "transfers", t.Service))
	}

	h := r.Hot
	p("\n## Hot accounts\n\n%d clients depositing to %d accounts. Conflict retries: appends that lost a race and were decided again "+
		"(`bank_command_conflict_retries_total`, scaled to the window). Commands per append: the deposits queued on one account "+
		"that were decided together and appended in one statement (group commit; `bank_append_group_size`).\n\n", h.Clients, h.Accounts)
	p("%s", header("tx/s", "p50 ms", "p95 ms", "p99 ms", "errors", "conflict retries", "retries per deposit", "gave up (409)",
		"commands per append", fmt.Sprintf("ratio to random accounts at %d clients", h.Clients)))
	ratioHot := "-"
	if h.RatioToDeposits > 0 {
		ratioHot = num(h.RatioToDeposits)
	}
	p("| %s | %s | %s | %s | %s | %.0f | %s | %.0f | %s | %s |\n", num(h.Service.Throughput), num(h.Service.P50), num(h.Service.P95), num(h.Service.P99),
		errs(h.Service), h.ConflictRetries, num(h.RetriesPerDeposit), h.GaveUp, num(h.CommandsPerAppend), ratioHot)
	p("\n")
	p("%s", header("run", "api", "projector", "postgres", "load generator", "other processes", "machine busy", "iowait", "CPU µs per request: api + postgres + projector / load generator", "WAL fsyncs / write", "sessions"))
	p("%s", strings.TrimPrefix(usageRow("", "hot", h.Service), "|  "))

	p("\n## Queries\n\nRandom accounts, as fast as the clients go; pgbench selects the same rows with the same SQL.\n\n")
	p("%s", header("query", "clients", "service req/s", "p50 ms", "p99 ms", "errors", "pgbench tx/s", "p50 ms", "p99 ms", "ratio tx/s", "ratio p99"))
	for _, q := range r.Queries {
		p("| `%s` | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", q.Path, q.Clients, num(q.Service.Throughput), num(q.Service.P50),
			num(q.Service.P99), errs(q.Service), tps(q.Pgbench), num(q.Pgbench.P50), num(q.Pgbench.P99), num(q.TPSRatio), num(q.P99Ratio))
	}
	p("\n")
	p("%s", header("query", "run", "api", "projector", "postgres", "load generator", "other processes", "machine busy", "iowait", "CPU µs per request: api + postgres + projector / load generator", "WAL fsyncs / write", "sessions"))
	for _, q := range r.Queries {
		p("%s", usageRow(q.Name, "service", q.Service))
		p("%s", usageRow(q.Name, "pgbench", q.Pgbench))
	}

	l := r.Lag
	p("\n## Projection lag\n\nDeposits at a constant %d/s (half the best rate above) to random accounts; for each acknowledged deposit, "+
		"the time until `account_balances` holds its version, polled about every millisecond on a separate connection.\n\n", l.Rate)
	p("%s", header("samples", "p50 ms", "p95 ms", "p99 ms", "max ms", "not seen", "sampler poll gap p99 / max ms", "deposits/s", "deposit p99 ms"))
	p("| %d | %s | %s | %s | %s | %d | %s / %s | %s | %s |\n", l.Samples, num(l.P50), num(l.P95), num(l.P99), num(l.Max), l.Lost,
		num(l.PollGapP99), num(l.PollGapMax), num(l.Deposits.Throughput), num(l.Deposits.P99))
	pb := l.Projector
	p("\nThe projector meanwhile (its own metrics; durations are histogram bucket bounds):\n\n")
	p("%s", header("batches", "events per batch", "batch mean ms", "batch p50 ms", "batch p99 ms", "slowest batch ms"))
	p("| %d | %s | %s | <= %s | <= %s | <= %s |\n\n", pb.Batches, num(pb.MeanEvents), num(pb.MeanMS), num(pb.P50MS), num(pb.P99MS), num(pb.MaxBucketMS))
	p("%s", header("run", "api", "projector", "postgres", "load generator", "other processes", "machine busy", "iowait", "CPU µs per request: api + postgres + projector / load generator", "WAL fsyncs / write", "sessions"))
	p("%s", strings.TrimPrefix(usageRow("", "lag", l.Deposits), "|  "))

	p("\n## Load time\n\n`EventStore.Load` of one account (snapshot plus tail in one query), on the same server.\n\n")
	p("%s", header("events", "snapshot at", "tail", "loads", "p50 ms", "p99 ms", "mean ms"))
	for _, lt := range r.Loads {
		snap := fmt.Sprint(lt.SnapshotAt)
		if lt.SnapshotAt == 0 {
			snap = "none"
		}
		p("| %d | %s | %d | %d | %s | %s | %s |\n", lt.Events, snap, lt.Events-lt.SnapshotAt, lt.Loads, num(lt.P50), num(lt.P99), num(lt.Mean))
	}

	rb := r.Rebuild
	p("\n## Rebuild and COPY\n\n")
	p("%s", header("what", "events", "events/s"))
	switch rb.Status {
	case "measured":
		p("| `projector rebuild` (all projections), wall clock of the command | %d | %s |\n", rb.Events, num(rb.EventsPerSec))
		if rb.ReportedPerSec > 0 {
			p("| `projector rebuild`, its own figure (fold and write, without start-up) | %d | %s |\n", rb.ReportedEvents, num(rb.ReportedPerSec))
		}
	default:
		p("| `projector rebuild` | %d | %s: %s |\n", rb.Events, rb.Status, oneLine(rb.Output))
	}
	p("| COPY events out | %d | %s |\n| COPY into a copy of events, indexes in place | %d | %s |\n", rb.Events, num(rb.CopyOutPerSec), rb.Events, num(rb.CopyInPerSec))

	p("\n## Peak memory\n\n%s| api | %s |\n| projector | %s |\n", header("process", "VmHWM MB"), num(r.Memory.APIPeakMB), num(r.Memory.ProjectorPeakMB))

	if kinds := errorKinds(r); kinds != "" {
		p("\n## Errors\n\n%s", kinds)
	}
	p("\n![throughput and p99 against clients](chart.png)\n")
	return b.String()
}

// header is a Markdown table's header row and separator.
func header(cols ...string) string {
	return "| " + strings.Join(cols, " | ") + " |\n|" + strings.Repeat("---|", len(cols)) + "\n"
}

func usageRow(first, run string, s Stats) string {
	u := s.Usage
	if u == nil {
		return fmt.Sprintf("| %s | %s | %s |  |  |  |  |  |  |  |  |  |\n", first, run, s.Skipped)
	}
	perWrite := "-"
	if s.OK > 0 && u.WALSyncs > 0 && !strings.HasPrefix(run, "select") && run != "pgbench" {
		perWrite = num(round2(float64(u.WALSyncs) / float64(s.OK)))
	}
	return fmt.Sprintf("| %s | %s | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %s | %s | %s |\n", first, run,
		u.APICPU, u.ProjectorCPU, u.PostgresCPU, u.ClientCPU, u.OtherCPU, u.MachineBusy, u.MachineIOWait, cpuPerRequest(s), perWrite, topWaits(u.Waits, 3))
}

// cpuPerRequest is the CPU each successful request cost, in microseconds:
// the service's processes (api, postgres, projector) and the load generator.
// Unlike throughput it hardly depends on what else the machine runs.
func cpuPerRequest(s Stats) string {
	u := s.Usage
	if u == nil || s.Throughput <= 0 {
		return "-"
	}
	us := func(pct float64) float64 { return perRequestMicros(pct, s) }
	return fmt.Sprintf("%.0f + %.0f + %.0f / %.0f", us(u.APICPU), us(u.PostgresCPU), us(u.ProjectorCPU), us(u.ClientCPU))
}

func errorKinds(r *Report) string {
	var b strings.Builder
	add := func(what string, s Stats) {
		if len(s.ErrorKinds) == 0 {
			return
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.ErrorKinds)) {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, s.ErrorKinds[k]))
		}
		fmt.Fprintf(&b, "- %s: %s\n", what, strings.Join(parts, "; "))
	}
	for _, d := range r.Deposits {
		add(fmt.Sprintf("deposits, %d clients, service", d.Clients), d.Service)
		add(fmt.Sprintf("deposits, %d clients, pgbench same SQL", d.Clients), d.PgbenchDeposit)
		add(fmt.Sprintf("deposits, %d clients, pgbench insert", d.Clients), d.PgbenchInsert)
	}
	add("hot accounts", r.Hot.Service)
	for _, q := range r.Queries {
		add(q.Path+" service", q.Service)
		add(q.Path+" pgbench", q.Pgbench)
	}
	add("projection lag run", r.Lag.Deposits)
	return b.String()
}

func tps(s Stats) string {
	if s.Skipped != "" {
		return "skipped"
	}
	return num(s.Throughput)
}

func errs(s Stats) string {
	if s.Errors == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.2f%%)", s.Errors, 100*float64(s.Errors)/float64(max(s.Requests, 1)))
}

// num prints v with sensible precision: 12345, 123.4, 1.23, 0.123.
func num(v float64) string {
	switch a := max(v, -v); {
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "|", "/")), " ")
}
