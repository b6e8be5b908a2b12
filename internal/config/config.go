// Package config holds the settings that the api and the projector share,
// with one default and one meaning each. Each binary's config struct embeds
// Shared, so that `api -h` and `projector -h` print the same rows for them.
package config

import (
	"fmt"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/evbank/bank/internal/domain"
)

// Shared are the settings of both binaries, read from the environment (no prefix).
type Shared struct {
	DatabaseURL     string        `envconfig:"DATABASE_URL" required:"true" desc:"PostgreSQL URL of the event store"`
	ReadDatabaseURL string        `envconfig:"READ_DATABASE_URL" desc:"PostgreSQL URL of the projection tables and checkpoints (default: DATABASE_URL)"`
	MigrateOnStart  bool          `envconfig:"MIGRATE_ON_START" default:"true" desc:"apply pending migrations of the event store and of the read model at start"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info" desc:"trace, debug, info, warn or error"`
	LogFormat       string        `envconfig:"LOG_FORMAT" default:"json" desc:"json or console"`
	DefaultCurrency string        `envconfig:"DEFAULT_CURRENCY" default:"USD" desc:"currency of accounts opened without one, and of legacy (schema version 1) events, which have none"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s" desc:"time to finish in-flight requests (api) or the current batch (projector) after SIGTERM"`
}

// SharedConfig returns s, so that Load can reach the shared part of any config
// that embeds it.
func (s *Shared) SharedConfig() *Shared { return s }

// Currency is DEFAULT_CURRENCY, parsed. Load has checked it; an unchecked
// value gives domain.FallbackCurrency.
func (s Shared) Currency() domain.Currency {
	c, err := domain.ParseCurrency(s.DefaultCurrency)
	if err != nil {
		return domain.FallbackCurrency
	}
	return c
}

// UpcastContext is what legacy events are upcast with.
func (s Shared) UpcastContext() domain.UpcastContext {
	return domain.UpcastContext{DefaultCurrency: s.Currency()}
}

// Load reads cfg, a pointer to a struct that embeds Shared, from the
// environment, fills the defaults that depend on other settings, and checks
// the shared ones. Errors: envconfig's, or an invalid DEFAULT_CURRENCY.
func Load(cfg interface{ SharedConfig() *Shared }) error {
	if err := envconfig.Process("", cfg); err != nil {
		return err
	}
	s := cfg.SharedConfig()
	if s.ReadDatabaseURL == "" {
		s.ReadDatabaseURL = s.DatabaseURL
	}
	if _, err := domain.ParseCurrency(s.DefaultCurrency); err != nil {
		return fmt.Errorf("DEFAULT_CURRENCY: %w", err)
	}
	return nil
}
