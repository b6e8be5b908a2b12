package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/auth"
	"github.com/evbank/bank/internal/command"
	appconfig "github.com/evbank/bank/internal/config"
	"github.com/evbank/bank/internal/httpapi"
	"github.com/evbank/bank/internal/probe"
	"github.com/evbank/bank/internal/query"
	"github.com/evbank/bank/internal/store"
	"github.com/evbank/bank/internal/telemetry"
)

// startProfiling, set only in binaries built with -tags pprof (pprof.go),
// serves the runtime profiles; the benchmark (make bench) uses it.
var startProfiling func(ctx context.Context, log zerolog.Logger) (stop func(), err error)

// run is the whole program. It returns when ctx ends and the server has drained.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return usage(stdout)
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if len(args) > 0 {
		switch args[0] {
		case "migrate":
			return migrateAll(cfg)
		case "healthcheck":
			return probe.Healthz(ctx, cfg.HTTPAddr)
		default:
			return fmt.Errorf("unknown command %q (want migrate, healthcheck or -h)", args[0])
		}
	}
	// Checked before the logger and the database: a missing setting is
	// named at once, before anything else happens.
	if err := cfg.checkAuth(); err != nil {
		return err
	}
	log, err := telemetry.NewLogger(stdout, cfg.LogLevel, cfg.LogFormat, "api")
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, nil)
}

func usage(w io.Writer) error {
	fmt.Fprint(w, `api serves the bank-account HTTP API.

Usage:
  api                 serve the API on HTTP_ADDR (migrating first unless
                      MIGRATE_ON_START=false)
  api migrate         apply the migrations of the event store and of the read
                      model, then exit
  api healthcheck     exit 0 if the api on HTTP_ADDR answers /healthz (the
                      container health check; the image has no shell or curl)
  api -h              this help

Environment:
`)
	// The same table as projector -h; the README's configuration tables are
	// checked against both (deploy/config_test.go).
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	if err := envconfig.Usagef("", &config{}, tw,
		"  NAME\tDEFAULT\tMEANING\n{{range .}}  {{usage_key .}}\t{{if usage_required .}}(required){{else if usage_default .}}{{usage_default .}}{{else}}-{{end}}\t{{usage_description .}}\n{{end}}"); err != nil {
		return err
	}
	return tw.Flush()
}

func loadConfig() (config, error) {
	var cfg config
	if err := appconfig.Load(&cfg); err != nil {
		return cfg, err
	}
	if cfg.IdempotencyTTL < 24*time.Hour {
		return cfg, errors.New("IDEMPOTENCY_KEY_TTL must be at least 24h")
	}
	if _, _, err := cfg.rateLimit(); err != nil {
		return cfg, err
	}
	if cfg.RequestTimeout <= 0 {
		return cfg, errors.New("REQUEST_TIMEOUT must be positive")
	}
	if cfg.CommandGroup < 1 {
		return cfg, errors.New("COMMAND_GROUP_MAX must be at least 1 (1: each command appended alone)")
	}
	return cfg, nil
}

func migrateAll(cfg config) error {
	if err := store.Migrate(cfg.DatabaseURL, store.EventStoreSchema); err != nil {
		return err
	}
	return store.Migrate(cfg.ReadDatabaseURL, store.ReadModelSchema)
}

// serve runs the HTTP server until ctx ends. ready, when not nil, receives the
// listening address (tests use HTTP_ADDR=127.0.0.1:0).
func serve(ctx context.Context, cfg config, log zerolog.Logger, ready chan<- string) error {
	authn, err := newAuthenticator(ctx, cfg, log)
	if err != nil {
		return err
	}
	perSecond, burst, err := cfg.rateLimit()
	if err != nil {
		return err
	}
	if cfg.MigrateOnStart {
		if err := migrateAll(cfg); err != nil {
			return err
		}
	}
	pool, err := newPool(ctx, "DATABASE_URL", cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	// The queries read the projection tables, which may be in another database.
	readPool := pool
	if cfg.ReadDatabaseURL != cfg.DatabaseURL {
		if readPool, err = newPool(ctx, "READ_DATABASE_URL", cfg.ReadDatabaseURL, cfg.DBMaxConns); err != nil {
			return err
		}
		defer readPool.Close()
	}

	cur := cfg.Currency()
	reg := telemetry.NewRegistry()
	telemetry.RegisterPool(reg, "events", pool)
	if readPool != pool {
		telemetry.RegisterPool(reg, "read", readPool)
	}
	events := store.NewEventStore(pool, store.Options{DefaultCurrency: cur, SnapshotEvery: cfg.SnapshotEvery, Log: log})
	commands := command.NewService(events, command.Config{
		DefaultCurrency: cur, MaxAttempts: cfg.CommandRetries, CacheSize: cfg.CommandCache, MaxGroup: cfg.CommandGroup, Observer: telemetry.NewCommandMetrics(reg),
	})
	router := httpapi.NewRouter(httpapi.Deps{
		Commands:       commands,
		Events:         events,
		EventLog:       events,
		Queries:        query.New(readPool),
		MinVersionWait: cfg.MinVersionWait,
		Ready:          readiness(pool, readPool),
		Metrics:        telemetry.Handler(reg),
		HTTPObs:        telemetry.NewHTTPMetrics(reg),
		Log:            log,
		Auth:           authn,
		RateLimit:      httpapi.RateLimit{PerSecond: perSecond, Burst: burst},
		RequestTimeout: cfg.RequestTimeout,
	})

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	log.Info().Str("addr", ln.Addr().String()).Msg("api listening")
	if ready != nil {
		ready <- ln.Addr().String()
	}

	go purgeIdempotencyKeys(ctx, events, cfg.IdempotencyTTL, log)
	go recoverTransfers(ctx, events, commands, cfg.TransferRecoveryAfter, telemetry.NewTransferMetrics(reg), log)
	if startProfiling != nil {
		stop, err := startProfiling(ctx, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info().Dur("timeout", cfg.ShutdownTimeout).Msg("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}

// newAuthenticator is AUTH_MODE's token check: a JWT verifier over the
// configured JWKS, or auth.None with a warning that cannot be missed.
func newAuthenticator(ctx context.Context, cfg config, log zerolog.Logger) (auth.Authenticator, error) {
	if err := cfg.checkAuth(); err != nil {
		return nil, err
	}
	if cfg.AuthMode == authNone {
		log.Warn().Str("auth_mode", authNone).
			Msg("AUTH_MODE=none: AUTHENTICATION IS OFF. Every request, from anyone who can reach this port, acts as the admin \"anonymous\" on every account. Use it for a demo or a trusted network only.")
		return auth.None{}, nil
	}
	vcfg := cfg.verifierConfig()
	vcfg.OnRefreshError = func(err error) {
		log.Warn().Err(err).Msg("reading the JWKS again failed; the keys read before stay in use")
	}
	v, err := auth.NewVerifier(ctx, vcfg)
	if err != nil {
		return nil, err
	}
	source := "AUTH_JWKS_FILE"
	if cfg.AuthJWKSURL != "" {
		source = "AUTH_JWKS_URL"
	}
	log.Info().Str("keys", source).Str("issuer", cfg.AuthIssuer).Str("audience", cfg.AuthAudience).Msg("bearer tokens required")
	return v, nil
}

func newPool(ctx context.Context, name, url string, maxConns int32) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pcfg.MaxConns = maxConns
	// A transaction left idle would hold back every tailing reader (DESIGN §4).
	store.SetIdleInTransactionTimeout(pcfg.ConnConfig, 0)
	pcfg.ConnConfig.RuntimeParams["application_name"] = "bank-api"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("%s: connect: %w", name, err)
	}
	return pool, nil
}

// readiness checks both databases: reachable, each schema at the version this
// binary expects. Its errors are *dberr.NotReady: /readyz shows their words,
// the log their cause (DESIGN §2: never a host, port or driver text).
func readiness(pool, readPool *pgxpool.Pool) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := store.SchemaCurrent(ctx, pool, store.EventStoreSchema); err != nil {
			return err
		}
		return store.SchemaCurrent(ctx, readPool, store.ReadModelSchema)
	}
}

// purgeBatch is how many idempotency records one DELETE removes: a few
// milliseconds of work, so no purge transaction holds the projector back.
const purgeBatch = 1000

func purgeIdempotencyKeys(ctx context.Context, events *store.EventStore, keep time.Duration, log zerolog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			res, err := events.PurgeIdempotencyKeys(ctx, keep, purgeBatch)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn().Err(err).Int64("deleted", res.Deleted).Msg("purging old idempotency keys failed")
			case res.Busy:
				log.Debug().Msg("another api instance is purging old idempotency keys")
			case res.Deleted > 0:
				log.Info().Int64("deleted", res.Deleted).Int("batches", res.Batches).Msg("purged old idempotency keys")
			}
		}
	}
}
