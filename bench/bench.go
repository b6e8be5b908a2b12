// Package bench measures the service end to end and sets each figure beside
// what PostgreSQL alone does with the same statements on the same server.
//
// Run starts a private, durable PostgreSQL (fsync and synchronous_commit on),
// builds and starts the real api and projector, opens the accounts through the
// api, and then measures: deposits at several client counts (wrk, closed
// loop, keep-alive) beside pgbench running the deposit's own SQL and a bare
// single-event INSERT; a hot-account run; the two main queries beside a
// pgbench select of the same rows; the projection lag at half the best
// deposit rate; the load time of a long and a short stream; `projector
// rebuild` (when the binary has it) beside COPY of the same rows; and the
// peak memory of both processes. WriteFiles renders the Report as Markdown,
// JSON and a chart. cmd/benchrun is the command (`make bench`).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/devauth"
	"github.com/evbank/bank/internal/pgserver"
)

// Config sets what Run measures; zero values take the defaults of Default.
type Config struct {
	// Root is the module to build; "" finds it above the working directory.
	Root string
	// Accounts opened before the runs; deposits and queries pick among them.
	Accounts int
	// Clients are the concurrencies of the deposit runs.
	Clients []int
	// Duration is each measured run; Warmup precedes it, unmeasured.
	Duration, Warmup time.Duration
	// HotAccounts and HotClients shape the hot-account run.
	HotAccounts, HotClients int
	// QueryClients is the concurrency of the query runs; RatioClients the
	// client count whose ratios are checked against the targets.
	QueryClients, RatioClients int
	// LoadSizes are the stream lengths whose load time is measured.
	LoadSizes []int
	// LoadBudget bounds each load-time measurement.
	LoadBudget time.Duration
	// LogLevel of the api and the projector (their default: info).
	LogLevel string
	// APIEnv and ProjectorEnv add to or override the processes' environment
	// (DB_MAX_CONNS=..., for instance).
	APIEnv, ProjectorEnv map[string]string
	// ProfileDir, when set, gets a CPU profile of the api (built with -tags
	// pprof) during the deposit run at RatioClients.
	ProfileDir string
	// SkipRebuild leaves `projector rebuild` out.
	SkipRebuild bool
	// Steps, when not empty, runs only these of StepNames (for quick
	// comparisons; the report then has empty sections).
	Steps []string
	// Progress receives a line per step (nil: none).
	Progress io.Writer
}

// StepNames are the parts of a run, in order.
var StepNames = []string{"deposits", "transfers", "hot", "queries", "lag", "load", "rebuild"}

// Default is the configuration of `make bench`.
func Default() Config {
	return Config{
		Accounts: 10_000, Clients: []int{1, 4, 16, 64}, Duration: 10 * time.Second, Warmup: 2 * time.Second,
		HotAccounts: 10, HotClients: 64, QueryClients: 16, RatioClients: 16,
		LoadSizes: []int{100, 10_000}, LoadBudget: 2 * time.Second, LogLevel: "info",
	}
}

func (c *Config) defaults() error {
	d := Default()
	setIf := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setIf(&c.Accounts, d.Accounts)
	setIf(&c.HotAccounts, d.HotAccounts)
	setIf(&c.HotClients, d.HotClients)
	setIf(&c.QueryClients, d.QueryClients)
	setIf(&c.RatioClients, d.RatioClients)
	if len(c.Clients) == 0 {
		c.Clients = d.Clients
	}
	if len(c.LoadSizes) == 0 {
		c.LoadSizes = d.LoadSizes
	}
	if c.Duration <= 0 {
		c.Duration = d.Duration
	}
	if c.Warmup <= 0 {
		c.Warmup = d.Warmup
	}
	if c.LoadBudget <= 0 {
		c.LoadBudget = d.LoadBudget
	}
	if c.LogLevel == "" {
		c.LogLevel = d.LogLevel
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	for _, st := range c.Steps {
		if !slices.Contains(StepNames, st) {
			return fmt.Errorf("bench: unknown step %q (want some of %s)", st, strings.Join(StepNames, ", "))
		}
	}
	if c.HotAccounts > c.Accounts {
		return fmt.Errorf("bench: %d hot accounts but only %d accounts", c.HotAccounts, c.Accounts)
	}
	if c.Root == "" {
		root, err := moduleRoot(".")
		if err != nil {
			return err
		}
		c.Root = root
	}
	return nil
}

const database = "bank"

// env is a process environment from scratch: nothing of the caller's service
// settings leaks into the measured processes.
func env(vars map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// bench is one run's state.
type bench struct {
	cfg     Config
	rep     *Report
	work    string
	srv     *pgserver.Server
	url     string
	pool    *pgxpool.Pool
	cmdPool *pgxpool.Pool // the in-process command service's, sized like the api's
	mon     *monitor
	api     *process
	proj    *process
	base    string // the api's URL
	projURL string
	ids     []uuid.UUID // the api's accounts
	// otherIDs are the accounts of the baselines that write.
	otherIDs []uuid.UUID
	pgb      *pgbenchRunner
	pgErr    error // why pgbench runs are skipped
	bins     string
	penv     []string

	pprofAddr string
	// token is the bearer token every request to the api carries: an
	// admin's, signed with a key made for this run (the api runs
	// AUTH_MODE=jwt, as in production, so its cost is in the figures).
	token string
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.cfg.Progress, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Run measures the service as Config says and returns the report. The server,
// the processes and the scratch directory are gone when it returns.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, rep: newReport(cfg)}
	if b.work, err = os.MkdirTemp("", "bank-bench-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w (scratch directory with the logs kept: %s)", err, b.work)
			return
		}
		_ = os.RemoveAll(b.work)
	}()
	defer b.teardown(&err)
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"deposits", b.deposits},
		{"transfers", b.transfers},
		{"hot", b.hot},
		{"queries", b.queries},
		{"lag", b.lag},
		{"load", b.loads},
		{"rebuild", b.rebuild},
	}
	for _, s := range steps {
		if len(cfg.Steps) > 0 && !slices.Contains(cfg.Steps, s.name) {
			continue
		}
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if b.api.exited() || b.proj.exited() {
			return nil, fmt.Errorf("after %s: a process exited; api log:\n%s\nprojector log:\n%s", s.name, b.api.logTail(2000), b.proj.logTail(2000))
		}
	}
	b.rep.Memory = Memory{
		APIPeakMB:       round1(float64(peakRSS(b.api.pid())) / (1 << 20)),
		ProjectorPeakMB: round1(float64(peakRSS(b.proj.pid())) / (1 << 20)),
	}
	b.rep.finish(cfg)
	return b.rep, nil
}

func (b *bench) setup(ctx context.Context) error {
	b.bins = filepath.Join(b.work, "bin")
	b.progress("building api and projector")
	if err := buildBinaries(ctx, b.cfg.Root, b.bins, b.cfg.ProfileDir != ""); err != nil {
		return err
	}
	b.progress("starting PostgreSQL (durable: fsync and synchronous_commit on)")
	srv, err := pgserver.Start(ctx, pgserver.Options{Durable: true})
	if err != nil {
		return err
	}
	b.srv = srv
	if err := createDatabase(ctx, srv); err != nil {
		return err
	}
	b.url = srv.URL(database)

	apiAddr, err := freeAddr(ctx)
	if err != nil {
		return err
	}
	projAddr, err := freeAddr(ctx)
	if err != nil {
		return err
	}
	common := map[string]string{"DATABASE_URL": b.url, "LOG_LEVEL": b.cfg.LogLevel, "LOG_FORMAT": "json"}
	apiVars := maps.Clone(common)
	apiVars["HTTP_ADDR"] = apiAddr
	key, files, err := devauth.Ensure(b.work)
	if err != nil {
		return err
	}
	if b.token, err = devauth.Token(key, "bench", "bank:admin", 24*time.Hour); err != nil {
		return err
	}
	apiVars["AUTH_MODE"] = "jwt"
	apiVars["AUTH_JWKS_FILE"] = files.JWKS
	apiVars["AUTH_ISSUER"] = devauth.Issuer
	apiVars["AUTH_AUDIENCE"] = devauth.Audience
	if b.cfg.ProfileDir != "" {
		if b.pprofAddr, err = freeAddr(ctx); err != nil {
			return err
		}
		apiVars["PPROF_ADDR"] = b.pprofAddr
	}
	// As many server connections as the baselines' pgbench opens for its
	// largest run: with DB_MAX_CONNS's default (20, sized for several api
	// instances on one server) the api's pool, not the server, was the queue
	// at 64 clients, and fewer commits shared each WAL flush.
	apiVars["DB_MAX_CONNS"] = strconv.Itoa(max(slices.Max(b.cfg.Clients), b.cfg.HotClients, b.cfg.QueryClients, 20))
	maps.Copy(apiVars, b.cfg.APIEnv)
	projVars := maps.Clone(common)
	projVars["PROJECTOR_ADDR"] = projAddr
	maps.Copy(projVars, b.cfg.ProjectorEnv)
	b.penv = env(projVars)
	b.rep.Settings.APIEnv = redact(apiVars)
	b.rep.Settings.ProjectorEnv = redact(projVars)

	// The api migrates both schemas first; then the projector starts on them.
	if b.api, err = startProcess("api", filepath.Join(b.bins, "api"), nil, env(apiVars), filepath.Join(b.work, "api.log")); err != nil {
		return err
	}
	b.base = "http://" + apiAddr
	if err := waitHTTP(ctx, b.api, b.base+"/readyz", time.Minute); err != nil {
		return err
	}
	if b.proj, err = startProcess("projector", filepath.Join(b.bins, "projector"), nil, b.penv, filepath.Join(b.work, "projector.log")); err != nil {
		return err
	}
	b.projURL = "http://" + projAddr
	if err := waitHTTP(ctx, b.proj, b.projURL+"/readyz", time.Minute); err != nil {
		return err
	}

	pcfg, err := pgxpool.ParseConfig(b.url)
	if err != nil {
		return err
	}
	pcfg.MaxConns = 4
	pcfg.ConnConfig.RuntimeParams["application_name"] = "bench-monitor"
	if b.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return err
	}
	ccfg, err := pgxpool.ParseConfig(b.url)
	if err != nil {
		return err
	}
	ccfg.MaxConns = 20 // DB_MAX_CONNS's default
	if n, err := strconv.Atoi(apiVars["DB_MAX_CONNS"]); err == nil && n > 0 {
		ccfg.MaxConns = int32(n)
	}
	ccfg.ConnConfig.RuntimeParams["application_name"] = "bench-in-process"
	if b.cmdPool, err = pgxpool.NewWithConfig(ctx, ccfg); err != nil {
		return err
	}
	b.mon = &monitor{pool: b.pool, apiPID: b.api.pid(), projPID: b.proj.pid(), pgPID: postmasterPID(srv.DataDir()), apiURL: b.base}
	if err := b.pool.QueryRow(ctx, `SELECT version()`).Scan(&b.rep.Machine.Postgres); err != nil {
		return err
	}
	b.rep.Machine.Postgres, _, _ = strings.Cut(b.rep.Machine.Postgres, " on ")

	if bin, err := findPgbench(); err != nil {
		b.pgErr = err
	} else {
		dir := filepath.Join(b.work, "pgbench")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		b.pgb = &pgbenchRunner{bin: bin, port: srv.Port(), db: database, dir: dir,
			vars: map[string]string{"accounts": strconv.Itoa(b.cfg.Accounts), "state_version": stateVersion}}
	}

	// Twice the accounts: the api's, and as many for the baselines that
	// write (see the pgbench scripts).
	n := 2 * b.cfg.Accounts
	b.progress("opening %d accounts through the api", n)
	took, err := seedAccounts(ctx, b.base, b.token, n, 32)
	if err != nil {
		return err
	}
	b.rep.Seed = SeedStats{Accounts: n, Seconds: round2(took.Seconds()), PerSecond: round1(float64(n) / took.Seconds())}
	b.ids = make([]uuid.UUID, b.cfg.Accounts)
	b.otherIDs = make([]uuid.UUID, b.cfg.Accounts)
	for i := range b.ids {
		b.ids[i] = accountID(i + 1)
		b.otherIDs[i] = accountID(b.cfg.Accounts + i + 1)
	}
	return b.settle(ctx)
}

// redact hides the connection URLs' details (they name a throwaway server anyway).
func redact(vars map[string]string) map[string]string {
	out := maps.Clone(vars)
	for k := range out {
		if strings.HasSuffix(k, "DATABASE_URL") {
			out[k] = "(the benchmark's server)"
		}
	}
	return out
}

func createDatabase(ctx context.Context, srv *pgserver.Server) error {
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, "CREATE DATABASE "+database)
	return err
}

func (b *bench) teardown(errp *error) {
	var errs []error
	if b.pool != nil {
		b.pool.Close()
	}
	if b.cmdPool != nil {
		b.cmdPool.Close()
	}
	for _, p := range []*process{b.api, b.proj} {
		if p != nil {
			if err := p.stop(20 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if b.srv != nil {
		if err := b.srv.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if *errp == nil && len(errs) > 0 {
		*errp = errors.Join(errs...)
	}
}

// settle waits until the projector has applied every event, then checkpoints
// the server, so that each run starts from the same state: nothing to catch
// up, no checkpoint halfway.
func (b *bench) settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		var caughtUp bool
		err := b.pool.QueryRow(ctx, `
SELECT count(*) >= 3 AND NOT EXISTS (
    SELECT 1 FROM events e
    WHERE (e.transaction_id, e.global_position) >
          (SELECT transaction_id, global_position FROM projection_checkpoints ORDER BY 1, 2 LIMIT 1))
FROM projection_checkpoints`).Scan(&caughtUp)
		if err != nil {
			return fmt.Errorf("waiting for the projector: %w", err)
		}
		if caughtUp {
			break
		}
		if b.proj.exited() {
			return fmt.Errorf("the projector exited; log tail:\n%s", b.proj.logTail(4000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the projector did not catch up: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	_, err := b.pool.Exec(ctx, `CHECKPOINT`)
	return err
}

// pgbench runs a pgbench script after settling, or says why it cannot.
func (b *bench) pgbench(ctx context.Context, name, script string, clients int) (Stats, error) {
	if b.pgb == nil {
		return Stats{Skipped: b.pgErr.Error()}, nil
	}
	if err := b.settle(ctx); err != nil {
		return Stats{}, err
	}
	return b.pgb.run(ctx, b.mon, name, script, clients, b.cfg.Warmup, b.cfg.Duration)
}

func (b *bench) deposits(ctx context.Context) error {
	for _, c := range b.cfg.Clients {
		row := DepositRow{Clients: c}
		load := wrkLoad{name: "deposit", clients: c, mode: "deposit", ids: b.ids}
		if b.cfg.ProfileDir != "" && c == b.cfg.RatioClients {
			load.profile = fmt.Sprintf("api-cpu-deposit-%d.pprof", c)
		}
		var err error
		if row.Service, err = b.closedLoop(ctx, load); err != nil {
			return err
		}
		b.progress("deposits, %2d clients: service %7.0f/s p99 %6.2f ms", c, row.Service.Throughput, row.Service.P99)
		if c == b.cfg.RatioClients {
			if err := b.settle(ctx); err != nil {
				return err
			}
			ip := inProcess(ctx, b.mon, b.cmdPool, b.otherIDs, c, b.cfg.Warmup, b.cfg.Duration)
			row.InProcess = &ip
			b.progress("deposits, %2d clients: in-process command service %7.0f/s p99 %6.2f ms", c, ip.Throughput, ip.P99)
		}
		if row.PgbenchDeposit, err = b.pgbench(ctx, "deposit", depositScript(), c); err != nil {
			return err
		}
		b.progress("deposits, %2d clients: pgbench same SQL %7.0f/s p99 %6.2f ms", c, row.PgbenchDeposit.Throughput, row.PgbenchDeposit.P99)
		if row.PgbenchInsert, err = b.pgbench(ctx, "insert", insertScript, c); err != nil {
			return err
		}
		b.progress("deposits, %2d clients: pgbench 1-event INSERT %7.0f/s p99 %6.2f ms", c, row.PgbenchInsert.Throughput, row.PgbenchInsert.P99)
		row.TPSRatio = ratio(row.Service.Throughput, row.PgbenchDeposit.Throughput)
		row.P99Ratio = ratio(row.Service.P99, row.PgbenchDeposit.P99)
		b.rep.Deposits = append(b.rep.Deposits, row)
	}
	return nil
}

// transfers moves 0.01 between random accounts at RatioClients: each is a
// check of both accounts and two appends (DESIGN §7), set beside the
// deposits of the same run.
func (b *bench) transfers(ctx context.Context) error {
	c := b.cfg.RatioClients
	st, err := b.closedLoop(ctx, wrkLoad{name: "transfer", clients: c, mode: "transfer", ids: b.ids})
	if err != nil {
		return err
	}
	b.rep.Transfers = TransferStats{Clients: c, Service: st}
	for _, d := range b.rep.Deposits {
		if d.Clients == c {
			b.rep.Transfers.RatioToDeposits = ratio(st.Throughput, d.Service.Throughput)
		}
	}
	b.progress("transfers, %2d clients: service %7.0f/s p99 %6.2f ms", c, st.Throughput, st.P99)
	return nil
}

// profileAPI saves a CPU profile of the api over the next d, starting at
// once: call it as the measured run starts.
func (b *bench) profileAPI(ctx context.Context, name string, d time.Duration) error {
	secs := max(int(d.Seconds()), 1)
	data, err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.pprofAddr, secs))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.cfg.ProfileDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.cfg.ProfileDir, name), data, 0o644)
}

// writeCounters are the api's write-side counters the hot run reports.
type writeCounters struct{ retries, gaveUp, appends, grouped float64 }

func (b *bench) writeCounters(ctx context.Context) (writeCounters, error) {
	m, err := fetch(ctx, b.base+"/metrics")
	if err != nil {
		return writeCounters{}, err
	}
	return writeCounters{
		retries: promSum(m, "bank_command_conflict_retries_total"), gaveUp: promSum(m, "bank_concurrency_conflicts_total"),
		appends: promSum(m, "bank_append_group_size_count"), grouped: promSum(m, "bank_append_group_size_sum"),
	}, nil
}

func (b *bench) hot(ctx context.Context) error {
	h := HotStats{Clients: b.cfg.HotClients, Accounts: b.cfg.HotAccounts}
	c0, err := b.writeCounters(ctx)
	if err != nil {
		return err
	}
	if h.Service, err = b.closedLoop(ctx, wrkLoad{name: "hot", clients: h.Clients, mode: "deposit", ids: b.ids[:h.Accounts]}); err != nil {
		return err
	}
	c1, err := b.writeCounters(ctx)
	if err != nil {
		return err
	}
	// The counters cover the warm-up too: scale them to the window.
	share := b.cfg.Duration.Seconds() / (b.cfg.Duration + b.cfg.Warmup).Seconds()
	h.ConflictRetries = math.Round((c1.retries - c0.retries) * share)
	h.GaveUp = math.Round((c1.gaveUp - c0.gaveUp) * share)
	if appends := c1.appends - c0.appends; appends > 0 {
		h.CommandsPerAppend = round3((c1.grouped - c0.grouped) / appends)
	}
	if h.Service.Requests > 0 {
		h.RetriesPerDeposit = round3(h.ConflictRetries / float64(h.Service.Requests))
	}
	for _, d := range b.rep.Deposits {
		if d.Clients == h.Clients {
			h.RatioToDeposits = ratio(h.Service.Throughput, d.Service.Throughput)
		}
	}
	b.rep.Hot = h
	b.progress("hot: %d clients on %d accounts: %7.0f/s p99 %6.2f ms, %.0f conflict retries, %.2f commands per append", h.Clients, h.Accounts, h.Service.Throughput, h.Service.P99, h.ConflictRetries, h.CommandsPerAppend)
	return nil
}

func (b *bench) queries(ctx context.Context) error {
	c := b.cfg.QueryClients
	for _, q := range []struct{ name, path, suffix, script string }{
		{"account", "GET /accounts/{id}", "", selectAccountScript},
		{"transactions", "GET /accounts/{id}/transactions", "/transactions", selectTransactionsScript},
	} {
		row := QueryRow{Name: q.name, Path: q.path, Clients: c}
		load := wrkLoad{name: q.name, clients: c, mode: "get", ids: b.ids, suffix: q.suffix}
		if b.cfg.ProfileDir != "" && q.name == "account" {
			load.profile = "api-cpu-get-account.pprof"
		}
		var err error
		if row.Service, err = b.closedLoop(ctx, load); err != nil {
			return err
		}
		if row.Pgbench, err = b.pgbench(ctx, "select-"+q.name, q.script, c); err != nil {
			return err
		}
		row.TPSRatio = ratio(row.Service.Throughput, row.Pgbench.Throughput)
		row.P99Ratio = ratio(row.Service.P99, row.Pgbench.P99)
		b.rep.Queries = append(b.rep.Queries, row)
		b.progress("%s, %d clients: service %7.0f/s p99 %6.2f ms; pgbench %7.0f/s p99 %6.2f ms", q.path, c,
			row.Service.Throughput, row.Service.P99, row.Pgbench.Throughput, row.Pgbench.P99)
	}
	return nil
}

func (b *bench) lag(ctx context.Context) error {
	best := 0.0
	for _, d := range b.rep.Deposits {
		best = max(best, d.Service.Throughput)
	}
	if best == 0 {
		best = 2000 // the deposit runs were skipped: a guess
	}
	rate := max(int(best/2), 1)
	conn, err := pgx.Connect(ctx, b.url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if err := b.settle(ctx); err != nil {
		return err
	}
	m0, err := fetch(ctx, b.projURL+"/metrics")
	if err != nil {
		return err
	}
	s := newLagSampler(conn)
	go s.run(ctx)
	st := attack(ctx, b.mon, attackOpts{name: "lag", clients: b.cfg.QueryClients, rate: rate, warmup: b.cfg.Warmup, dur: b.cfg.Duration,
		targeter: withBearer(depositTargeter(b.base, b.ids), b.token), onResult: s.observe})
	s.close()
	<-s.done
	m1, err := fetch(ctx, b.projURL+"/metrics")
	if err != nil {
		return err
	}
	l := s.stats()
	l.Rate, l.Deposits, l.Projector = rate, st, projectorBatches(m0, m1)
	b.rep.Lag = l
	b.progress("projection lag at %d deposits/s: p50 %.1f ms p99 %.1f ms (%d samples; sampler poll gap p99 %.1f ms); projector: %d batches of %.1f events, mean %.1f ms, p99 <= %.0f ms",
		rate, l.P50, l.P99, l.Samples, l.PollGapP99, l.Projector.Batches, l.Projector.MeanEvents, l.Projector.MeanMS, l.Projector.P99MS)
	return nil
}

func (b *bench) loads(ctx context.Context) error {
	if err := b.settle(ctx); err != nil {
		return err
	}
	lt, err := measureLoads(ctx, b.pool, b.cfg.LoadSizes, b.cfg.LoadBudget)
	if err != nil {
		return err
	}
	b.rep.Loads = lt
	for _, l := range lt {
		b.progress("load of a %d-event account (snapshot at %d): p50 %.2f ms", l.Events, l.SnapshotAt, l.P50)
	}
	return nil
}

func (b *bench) rebuild(ctx context.Context) error {
	if err := b.settle(ctx); err != nil {
		return err
	}
	rs := &b.rep.Rebuild
	if err := measureCopy(ctx, b.pool, rs); err != nil {
		return err
	}
	b.progress("COPY of %d events: out %.0f/s, into an indexed table %.0f/s", rs.Events, rs.CopyOutPerSec, rs.CopyInPerSec)
	if b.cfg.SkipRebuild {
		rs.Status = "skipped"
		return nil
	}
	measureRebuild(ctx, filepath.Join(b.bins, "projector"), b.penv, 3*time.Minute, rs)
	b.progress("projector rebuild: %s, %.0f events/s wall clock; %s", rs.Status, rs.EventsPerSec, firstLine(rs.Output))
	return nil
}

// goInfo is the toolchain's version and the machine's size, for the report.
func goInfo() (string, int) { return runtime.Version(), runtime.NumCPU() }
