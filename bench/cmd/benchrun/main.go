// Command benchrun runs the end-to-end benchmark (make bench): a private
// durable PostgreSQL, the real api and projector, vegeta load and pgbench
// baselines. It prints the Markdown report and writes results.md,
// results.json, chart.svg and chart.png into -out.
//
//	go run ./bench/cmd/benchrun [-out bench-results] [-duration 10s] [-clients 1,4,16,64] ...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/evbank/bank/bench"
)

func main() {
	// The children's parent-death signal is tied to the thread that started
	// them: keep the main goroutine on one thread for the whole run.
	runtime.LockOSThread()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := bench.Default()
	out := flag.String("out", "bench-results", "directory for results.md, results.json and the charts")
	clients := flag.String("clients", "1,4,16,64", "client counts of the deposit runs")
	apiEnv := flag.String("api-env", "", "extra api environment, KEY=VALUE[,KEY=VALUE...] (e.g. DB_MAX_CONNS=8)")
	projEnv := flag.String("projector-env", "", "extra projector environment, KEY=VALUE[,...]")
	profile := flag.Bool("profile", false, "build the api with -tags pprof and save a CPU profile of the deposit run at -ratio-clients into -out")
	steps := flag.String("steps", "", "run only these steps, comma-separated ("+strings.Join(bench.StepNames, ",")+"); default all")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "accounts to open before the runs")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time of each run")
	flag.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured time before each run")
	flag.IntVar(&cfg.RatioClients, "ratio-clients", cfg.RatioClients, "client count whose ratios are checked against the targets")
	flag.IntVar(&cfg.QueryClients, "query-clients", cfg.QueryClients, "clients of the query runs")
	flag.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "LOG_LEVEL of the api and the projector")
	flag.BoolVar(&cfg.SkipRebuild, "skip-rebuild", false, "do not run projector rebuild")
	flag.Parse()

	var err error
	if cfg.Clients, err = parseInts(*clients); err != nil {
		return fmt.Errorf("-clients: %w", err)
	}
	if cfg.APIEnv, err = parseEnv(*apiEnv); err != nil {
		return fmt.Errorf("-api-env: %w", err)
	}
	if cfg.ProjectorEnv, err = parseEnv(*projEnv); err != nil {
		return fmt.Errorf("-projector-env: %w", err)
	}
	if *steps != "" {
		cfg.Steps = strings.Split(*steps, ",")
	}
	if *profile {
		cfg.ProfileDir = *out
	}
	cfg.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.WriteFiles(*out); err != nil {
		return err
	}
	fmt.Print(rep.Markdown())
	fmt.Fprintf(os.Stderr, "\nwritten: %s/results.md, results.json, chart.svg, chart.png\n", *out)
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseEnv(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}
