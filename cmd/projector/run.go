package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/internal/projection"
	"github.com/evbank/bank/internal/publish"
	"github.com/evbank/bank/internal/store"
	"github.com/evbank/bank/internal/telemetry"
)

// run is the whole program. Serving, it returns nil when ctx ends and the
// batch in progress is committed.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return usage(stdout)
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(ctx, args[1:])
	}
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "", "verify":
		if len(args) > 1 {
			return fmt.Errorf("unexpected arguments %q", args[1:])
		}
	case "rebuild":
	default:
		return fmt.Errorf("unknown command %q (want verify, rebuild or -h)", sub)
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log, err := telemetry.NewLogger(stdout, cfg.LogLevel, cfg.LogFormat, "projector")
	if err != nil {
		return err
	}
	switch sub {
	case "verify":
		return verify(ctx, cfg, stdout)
	case "rebuild":
		return rebuild(ctx, cfg, log, args[1:], stdout)
	}
	return serve(ctx, cfg, log, nil)
}

func usage(w io.Writer) error {
	fmt.Fprintf(w, `projector keeps the read tables up to date from the event store.

Usage:
  projector           apply events as they are appended; serve /healthz, /readyz
                      and /metrics on PROJECTOR_ADDR (one instance is active,
                      others stand by and take over); with NATS_URL set, the
                      active instance also publishes every event to NATS
                      JetStream as a CloudEvent
  projector verify    compare every read table with a fold of the event store;
                      exit 2 naming the accounts that drifted (listens on no address)
  projector rebuild [name...]
                      rebuild the named projections (default: all) from the
                      start of the event store into new tables, then swap them
                      in; the old tables serve meanwhile (listens on no address).
                      Names: %s.
                      SIGINT/SIGTERM stop it after the current chunk (exit 3);
                      run it again to resume
  projector healthcheck
                      exit 0 if the projector on PROJECTOR_ADDR answers /healthz
                      (the container health check; the image has no shell or curl)
  projector -h        this help

Environment:
`, strings.Join(projection.Names(), ", "))
	// The same table as api -h; the README's configuration tables are checked
	// against both (deploy/config_test.go).
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	if err := envconfig.Usagef("", &config{}, tw,
		"  NAME\tDEFAULT\tMEANING\n{{range .}}  {{usage_key .}}\t{{if usage_required .}}(required){{else if usage_default .}}{{usage_default .}}{{else}}-{{end}}\t{{usage_description .}}\n{{end}}"); err != nil {
		return err
	}
	return tw.Flush()
}

// pools opens the events and read pools. Every session gets
// idle_in_transaction_session_timeout: an idle transaction anywhere on the
// server holds every tailing reader back.
func pools(ctx context.Context, cfg config) (events, read *pgxpool.Pool, err error) {
	open := func(name, url string) (*pgxpool.Pool, error) {
		pcfg, err := store.ParseTailPoolConfig(url, cfg.IdleInTxTimeout)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		pcfg.MaxConns = cfg.DBMaxConns
		pcfg.ConnConfig.RuntimeParams["application_name"] = "bank-projector"
		p, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, fmt.Errorf("%s: connect: %w", name, err)
		}
		return p, nil
	}
	if events, err = open("DATABASE_URL", cfg.DatabaseURL); err != nil {
		return nil, nil, err
	}
	if read, err = open("READ_DATABASE_URL", cfg.ReadDatabaseURL); err != nil {
		events.Close()
		return nil, nil, err
	}
	return events, read, nil
}

// serve runs the projector until ctx ends. ready, when not nil, receives the
// listening address (tests use PROJECTOR_ADDR=127.0.0.1:0).
func serve(ctx context.Context, cfg config, log zerolog.Logger, ready chan<- string) error {
	if cfg.MigrateOnStart {
		// The event store's schema too, so that the projector may start first.
		if err := store.Migrate(cfg.DatabaseURL, store.EventStoreSchema); err != nil {
			return err
		}
		if err := store.Migrate(cfg.ReadDatabaseURL, store.ReadModelSchema); err != nil {
			return err
		}
	}
	events, read, err := pools(ctx, cfg)
	if err != nil {
		return err
	}
	defer events.Close()
	defer read.Close()

	reg := telemetry.NewRegistry()
	telemetry.RegisterPool(reg, "events", events)
	telemetry.RegisterPool(reg, "read", read)
	metrics, err := projection.NewMetrics(reg)
	if err != nil {
		return err
	}
	runner, err := projection.NewRunner(store.NewTailer(events, cfg.UpcastContext()), read, projection.Options{
		BatchSize:       cfg.BatchSize,
		MaxPoll:         cfg.PollInterval,
		StandbyRetry:    cfg.StandbyRetry,
		BatchTimeout:    cfg.BatchTimeout,
		HeldBackWarning: cfg.HeldBackWarning,
		LockKey:         cfg.LockKey,
		Metrics:         metrics,
		Log:             log,
	})
	if err != nil {
		return err
	}

	// The publisher (DESIGN §8): one more consumer of the tail, in the active
	// instance only, with its own checkpoint; its failures never stop the
	// projections nor make the projector unready.
	var pub *publish.Publisher
	if cfg.NATSURL != "" {
		pub, err = publish.New(store.NewTailer(events, cfg.UpcastContext()), read, publish.Options{
			URL:           cfg.NATSURL,
			Stream:        cfg.NATSStream,
			SubjectPrefix: cfg.NATSPrefix,
			Source:        cfg.EventsSource,
			Metrics:       metrics,
			Log:           log,
		})
		if err != nil {
			return err
		}
	}
	publisherState := func() any {
		if pub == nil {
			return map[string]any{"status": "off", "detail": "NATS_URL is not set"}
		}
		return pub.State()
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		err := readiness(r.Context(), events, read)
		if err == nil {
			err = failing(runner, cfg.FailingAfter)
		}
		if err != nil {
			log.Warn().Err(err).Msg("not ready")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": dberr.ReadyReason(err), "active": runner.Active(), "publisher": publisherState()})
			return
		}
		// The publisher's state is named, never judged: a broker outage must
		// not take the projections out of service.
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "active": runner.Active(), "publisher": publisherState()})
	})
	mux.Handle("GET /metrics", telemetry.Handler(reg))

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	log.Info().Str("addr", ln.Addr().String()).Int("batch_size", cfg.BatchSize).Msg("projector listening")
	if ready != nil {
		ready <- ln.Addr().String()
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()

	runCtx, stopRunner := context.WithCancel(ctx)
	defer stopRunner()
	runErr := make(chan error, 1)
	go func() { runErr <- runner.Run(runCtx) }()
	pubDone := make(chan struct{})
	if pub != nil {
		go func() {
			defer close(pubDone)
			_ = pub.Run(runCtx, runner.Active) // returns nil when runCtx ends
		}()
	} else {
		close(pubDone)
	}

	var result error
	select {
	case err := <-runErr:
		// Only an error that needs an operator ends Run before ctx does.
		result = err
		runErr = nil
	case err := <-srvErr:
		result = fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	deadline := time.Now().Add(cfg.ShutdownTimeout)
	if runErr != nil {
		log.Info().Dur("timeout", cfg.ShutdownTimeout).Msg("shutting down: finishing the current batch")
		stopRunner()
		select {
		case err := <-runErr:
			result = errors.Join(result, err)
		case <-time.After(time.Until(deadline)):
			result = errors.Join(result, fmt.Errorf("the current batch did not finish within SHUTDOWN_TIMEOUT (%s)", cfg.ShutdownTimeout))
		}
	}
	stopRunner()
	select {
	case <-pubDone:
	case <-time.After(time.Until(deadline)):
	}
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		result = errors.Join(result, fmt.Errorf("http shutdown: %w", err))
	}
	if result == nil {
		log.Info().Msg("stopped")
	}
	return result
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// failing reports batches that have failed for longer than after: the
// projector is up but the read tables stand still, which must not look ready.
// In words only; the log has the errors.
func failing(r *projection.Runner, after time.Duration) error {
	f, ok := r.Failing()
	if !ok {
		return nil
	}
	d := time.Since(f.Since)
	if d < after {
		return nil
	}
	at := ""
	if f.Event != "" {
		at = " at " + f.Event
	}
	return &dberr.NotReady{Reason: fmt.Sprintf("projector batches failing for %s (%d attempts)%s; see the log", d.Truncate(time.Second), f.Count, at)}
}

// readiness: both databases reachable, each schema at the version this
// binary expects and not dirty.
func readiness(ctx context.Context, events, read *pgxpool.Pool) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := store.SchemaCurrent(ctx, events, store.EventStoreSchema); err != nil {
		return err
	}
	return store.SchemaCurrent(ctx, read, store.ReadModelSchema)
}

// verify compares the read tables with a fold of the event store and prints
// the result; drift is an exitError with status 2 naming the accounts.
func verify(ctx context.Context, cfg config, out io.Writer) error {
	events, read, err := pools(ctx, cfg)
	if err != nil {
		return err
	}
	defer events.Close()
	defer read.Close()
	rep, err := projection.Verify(ctx, store.NewTailer(events, cfg.UpcastContext()), read)
	if err != nil {
		return err
	}
	for _, name := range projection.Names() {
		fmt.Fprintf(out, "%s checked at %s\n", name, rep.Checkpoints[name])
	}
	for _, table := range rep.Unverified {
		fmt.Fprintf(out, "%s not checked: verify has no oracle for it\n", table)
	}
	for _, d := range rep.Drifts {
		fmt.Fprintln(out, d)
	}
	ids := rep.DriftedAccounts()
	if len(ids) == 0 {
		fmt.Fprintf(out, "no drift: %d accounts match the event store\n", rep.Accounts)
		return nil
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id.String()
	}
	return &exitError{code: 2, err: fmt.Errorf("drift in %d of %d accounts: %s", len(ids), rep.Accounts, strings.Join(names, ", "))}
}
