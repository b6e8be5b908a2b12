package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/evbank/bank/internal/domain"
)

// config is every setting of the projector, read from the environment (no prefix).
type config struct {
	DatabaseURL     string        `envconfig:"DATABASE_URL" required:"true" desc:"PostgreSQL URL of the event store"`
	ReadDatabaseURL string        `envconfig:"READ_DATABASE_URL" desc:"PostgreSQL URL of the projection tables and checkpoints (default: DATABASE_URL)"`
	Addr            string        `envconfig:"PROJECTOR_ADDR" default:":9090" desc:"address of /healthz, /readyz and /metrics"`
	MigrateOnStart  bool          `envconfig:"MIGRATE_ON_START" default:"true" desc:"apply pending migrations of the event store and of the read model at start"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info" desc:"trace, debug, info, warn or error"`
	LogFormat       string        `envconfig:"LOG_FORMAT" default:"json" desc:"json or console"`
	DefaultCurrency string        `envconfig:"DEFAULT_CURRENCY" default:"USD" desc:"currency of legacy (schema version 1) events, which have none"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s" desc:"time to finish the current batch after SIGTERM"`
	BatchSize       int           `envconfig:"PROJECTOR_BATCH_SIZE" default:"1000" desc:"most events read and applied in one transaction"`
	PollInterval    time.Duration `envconfig:"PROJECTOR_POLL_INTERVAL" default:"50ms" desc:"longest pause between reads when idle (it starts at 1ms and doubles)"`
	BatchTimeout    time.Duration `envconfig:"PROJECTOR_BATCH_TIMEOUT" default:"10s" desc:"limit on one batch; keep it below SHUTDOWN_TIMEOUT"`
	StandbyRetry    time.Duration `envconfig:"PROJECTOR_STANDBY_RETRY" default:"1s" desc:"how often a standby instance tries to become active (and the active one checks its lock)"`
	LockKey         int64         `envconfig:"PROJECTOR_LOCK_KEY" default:"7311139215686446448" desc:"advisory lock key on the read database that elects the active instance"`
	HeldBackWarning time.Duration `envconfig:"PROJECTOR_HELD_BACK_WARNING" default:"10s" desc:"log the session whose open transaction has held the reader back this long"`
	FailingAfter    time.Duration `envconfig:"PROJECTOR_FAILING_AFTER" default:"30s" desc:"/readyz answers 503 once batches have failed for this long without one succeeding"`
	IdleInTxTimeout time.Duration `envconfig:"PROJECTOR_IDLE_IN_TRANSACTION_TIMEOUT" default:"10s" desc:"idle_in_transaction_session_timeout of the projector's database sessions"`
	DBMaxConns      int32         `envconfig:"PROJECTOR_DB_MAX_CONNS" default:"4" desc:"connection pool size, per database"`
}

func loadConfig() (config, error) {
	var cfg config
	if err := envconfig.Process("", &cfg); err != nil {
		return cfg, err
	}
	if cfg.DatabaseURL == "" {
		return cfg, errors.New("DATABASE_URL is empty: set it to the event store's PostgreSQL URL")
	}
	if cfg.ReadDatabaseURL == "" {
		cfg.ReadDatabaseURL = cfg.DatabaseURL
	}
	if _, err := domain.ParseCurrency(cfg.DefaultCurrency); err != nil {
		return cfg, fmt.Errorf("DEFAULT_CURRENCY: %w", err)
	}
	switch {
	case cfg.BatchSize < 1:
		return cfg, errors.New("PROJECTOR_BATCH_SIZE must be at least 1")
	case cfg.PollInterval < time.Millisecond:
		return cfg, errors.New("PROJECTOR_POLL_INTERVAL must be at least 1ms")
	case cfg.ShutdownTimeout <= 0 || cfg.BatchTimeout <= 0 || cfg.StandbyRetry <= 0 || cfg.FailingAfter <= 0:
		return cfg, errors.New("SHUTDOWN_TIMEOUT, PROJECTOR_BATCH_TIMEOUT, PROJECTOR_STANDBY_RETRY and PROJECTOR_FAILING_AFTER must be positive")
	case cfg.BatchTimeout >= cfg.ShutdownTimeout:
		return cfg, fmt.Errorf("PROJECTOR_BATCH_TIMEOUT (%s) must be below SHUTDOWN_TIMEOUT (%s), so that shutdown can finish a batch", cfg.BatchTimeout, cfg.ShutdownTimeout)
	case cfg.DBMaxConns < 2:
		return cfg, errors.New("PROJECTOR_DB_MAX_CONNS must be at least 2")
	}
	return cfg, nil
}
