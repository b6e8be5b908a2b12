package main

import (
	"time"

	appconfig "github.com/evbank/bank/internal/config"
)

// config is every setting of the api, read from the environment (no prefix):
// those it shares with the projector, then its own.
type config struct {
	appconfig.Shared
	HTTPAddr       string        `envconfig:"HTTP_ADDR" default:":8080" desc:"address the HTTP API listens on"`
	SnapshotEvery  int           `envconfig:"SNAPSHOT_EVERY" default:"100" desc:"write an aggregate snapshot every N events (0: never)"`
	MinVersionWait time.Duration `envconfig:"MIN_VERSION_WAIT" default:"2s" desc:"how long a query with min_version waits for the projection"`
	DBMaxConns     int32         `envconfig:"DB_MAX_CONNS" default:"20" desc:"event store connection pool size"`
	CommandRetries int           `envconfig:"COMMAND_MAX_ATTEMPTS" default:"20" desc:"attempts of a command whose append loses a race before 409 concurrency_conflict"`
	CommandCache   int           `envconfig:"COMMAND_CACHE_SIZE" default:"100000" desc:"account states kept in memory to spare a load per command (0: none; keep it on when one api writes each account)"`
	IdempotencyTTL time.Duration `envconfig:"IDEMPOTENCY_KEY_TTL" default:"48h" desc:"how long Idempotency-Key responses are kept (at least 24h)"`
	ReadTimeout    time.Duration `envconfig:"HTTP_READ_TIMEOUT" default:"15s" desc:"time to read a whole request"`
	WriteTimeout   time.Duration `envconfig:"HTTP_WRITE_TIMEOUT" default:"30s" desc:"time to write a response"`
	IdleTimeout    time.Duration `envconfig:"HTTP_IDLE_TIMEOUT" default:"120s" desc:"keep-alive idle time"`
}
