package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	appconfig "github.com/evbank/bank/internal/config"
)

// config is every setting of the projector, read from the environment (no
// prefix): those it shares with the api, then its own.
type config struct {
	appconfig.Shared
	Addr            string        `envconfig:"PROJECTOR_ADDR" default:":9090" desc:"address of /healthz, /readyz and /metrics"`
	BatchSize       int           `envconfig:"PROJECTOR_BATCH_SIZE" default:"1000" desc:"most events read and applied in one transaction"`
	PollInterval    time.Duration `envconfig:"PROJECTOR_POLL_INTERVAL" default:"50ms" desc:"longest pause between reads when idle (it starts at 1ms and doubles)"`
	BatchTimeout    time.Duration `envconfig:"PROJECTOR_BATCH_TIMEOUT" default:"10s" desc:"limit on one batch; keep it below SHUTDOWN_TIMEOUT"`
	StandbyRetry    time.Duration `envconfig:"PROJECTOR_STANDBY_RETRY" default:"1s" desc:"how often a standby instance tries to become active (and the active one checks its lock)"`
	LockKey         int64         `envconfig:"PROJECTOR_LOCK_KEY" default:"7311139215686446448" desc:"advisory lock key on the read database that elects the active instance"`
	HeldBackWarning time.Duration `envconfig:"PROJECTOR_HELD_BACK_WARNING" default:"10s" desc:"log the session whose open transaction has held the reader back this long"`
	FailingAfter    time.Duration `envconfig:"PROJECTOR_FAILING_AFTER" default:"30s" desc:"/readyz answers 503 once batches have failed for this long without one succeeding"`
	IdleInTxTimeout time.Duration `envconfig:"PROJECTOR_IDLE_IN_TRANSACTION_TIMEOUT" default:"10s" desc:"idle_in_transaction_session_timeout of the projector's database sessions"`
	DBMaxConns      int32         `envconfig:"PROJECTOR_DB_MAX_CONNS" default:"4" desc:"connection pool size, per database"`
	NATSURL         string        `envconfig:"NATS_URL" desc:"NATS server URL(s); when set, the active instance publishes every event to JetStream (unset: no publishing)"`
	NATSStream      string        `envconfig:"NATS_STREAM" default:"BANK_EVENTS" desc:"JetStream stream of the events, created if missing"`
	NATSPrefix      string        `envconfig:"NATS_SUBJECT_PREFIX" default:"bank" desc:"first tokens of the subjects: <prefix>.account.<stream_id>.<event_type>"`
	EventsSource    string        `envconfig:"EVENTS_SOURCE" default:"/bank" desc:"CloudEvents source of the published events"`
}

func loadConfig() (config, error) {
	var cfg config
	if err := appconfig.Load(&cfg); err != nil {
		return cfg, err
	}
	switch {
	case cfg.DatabaseURL == "":
		return cfg, errors.New("DATABASE_URL is empty: set it to the event store's PostgreSQL URL")
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
	case !validPrefix(cfg.NATSPrefix):
		return cfg, fmt.Errorf("NATS_SUBJECT_PREFIX %q: want dot-separated tokens of letters, digits, - and _ (no wildcards)", cfg.NATSPrefix)
	case cfg.NATSStream == "" || strings.ContainsAny(cfg.NATSStream, ". *>/\\\t"):
		return cfg, fmt.Errorf("NATS_STREAM %q: want a name without spaces, dots, wildcards or slashes", cfg.NATSStream)
	case cfg.EventsSource == "":
		return cfg, errors.New("EVENTS_SOURCE must not be empty (a CloudEvent needs a source)")
	}
	return cfg, nil
}

var prefixToken = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validPrefix: the prefix is literal subject tokens, so that the stream's
// subjects <prefix>.> and a consumer's filters mean what they say.
func validPrefix(p string) bool {
	for _, t := range strings.Split(p, ".") {
		if !prefixToken.MatchString(t) {
			return false
		}
	}
	return true
}
