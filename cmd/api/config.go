package main

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/evbank/bank/internal/auth"
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
	CommandGroup   int           `envconfig:"COMMAND_GROUP_MAX" default:"64" desc:"most commands queued on one account that are decided together and appended in one statement (1: each alone)"`
	IdempotencyTTL time.Duration `envconfig:"IDEMPOTENCY_KEY_TTL" default:"48h" desc:"how long Idempotency-Key responses are kept (at least 24h)"`
	ReadTimeout    time.Duration `envconfig:"HTTP_READ_TIMEOUT" default:"15s" desc:"time to read a whole request"`
	WriteTimeout   time.Duration `envconfig:"HTTP_WRITE_TIMEOUT" default:"30s" desc:"time to write a response"`
	IdleTimeout    time.Duration `envconfig:"HTTP_IDLE_TIMEOUT" default:"120s" desc:"keep-alive idle time"`
	RequestTimeout time.Duration `envconfig:"REQUEST_TIMEOUT" default:"10s" desc:"deadline of each request; its database work is cancelled after it (503 timeout)"`

	// DESIGN §6: who may call, and how often.
	AuthMode       string        `envconfig:"AUTH_MODE" default:"jwt" desc:"jwt (a bearer JWT checked against a JWKS on every request) or none (every request is the admin anonymous: a demo or a trusted network only)"`
	AuthJWKSURL    string        `envconfig:"AUTH_JWKS_URL" desc:"URL of the identity provider's JWKS: fetched at start, refreshed every 10m and on an unknown kid (at most every 30s); jwt mode needs it or AUTH_JWKS_FILE"`
	AuthJWKSFile   string        `envconfig:"AUTH_JWKS_FILE" desc:"JWKS file, read again when it changes (checked at most once a second, and at once for an unknown kid); jwt mode needs it or AUTH_JWKS_URL"`
	AuthIssuer     string        `envconfig:"AUTH_ISSUER" desc:"the iss every token must carry (needed in jwt mode)"`
	AuthAudience   string        `envconfig:"AUTH_AUDIENCE" desc:"the aud every token must carry or contain (needed in jwt mode)"`
	AuthClockSkew  time.Duration `envconfig:"AUTH_CLOCK_SKEW" default:"30s" desc:"clock skew allowed on a token's exp, nbf and iat"`
	RateLimit      float64       `envconfig:"RATE_LIMIT" default:"0" desc:"requests per second per principal, over which 429 rate_limited (0: no limit)"`
	RateLimitBurst int           `envconfig:"RATE_LIMIT_BURST" desc:"requests a principal may send at once before RATE_LIMIT applies (default: 2 x RATE_LIMIT)"`

	// DESIGN §7.
	TransferRecoveryAfter time.Duration `envconfig:"TRANSFER_RECOVERY_AFTER" default:"5s" desc:"age after which a pending transfer is finished by the recovery loop (one api instance at a time)"`
}

// Authentication modes (AUTH_MODE).
const (
	authJWT  = "jwt"
	authNone = "none"
)

// checkAuth reports what serving would lack: the api refuses to start
// without a complete way to check tokens rather than serve nobody (or
// everybody). migrate and healthcheck need none of it.
func (c config) checkAuth() error {
	switch c.AuthMode {
	case authNone:
		return nil
	case authJWT:
	default:
		return fmt.Errorf("AUTH_MODE=%q: want jwt or none", c.AuthMode)
	}
	if err := c.verifierConfig().Check(); err != nil {
		return fmt.Errorf("%w (AUTH_MODE=none turns authentication off, for a demo only)", err)
	}
	return nil
}

// verifierConfig is the JWT verifier's part of the configuration.
func (c config) verifierConfig() auth.VerifierConfig {
	return auth.VerifierConfig{
		JWKSURL:  c.AuthJWKSURL,
		JWKSFile: c.AuthJWKSFile,
		Issuer:   c.AuthIssuer,
		Audience: c.AuthAudience,
		Leeway:   c.AuthClockSkew,
		// A stat per request is the busiest part of a cached token's
		// check; a new kid is still looked for at once, so only a
		// withdrawn key outlives its removal, by at most this.
		JWKSFileCheckEvery: time.Second,
	}
}

// rateLimit is RATE_LIMIT and its burst, defaulted.
func (c config) rateLimit() (perSecond float64, burst int, err error) {
	switch {
	case c.RateLimit < 0:
		return 0, 0, errors.New("RATE_LIMIT must not be negative")
	case c.RateLimitBurst < 0:
		return 0, 0, errors.New("RATE_LIMIT_BURST must not be negative")
	case c.RateLimit == 0:
		return 0, 0, nil
	}
	burst = c.RateLimitBurst
	if burst == 0 {
		burst = max(1, int(math.Ceil(2*c.RateLimit)))
	}
	return c.RateLimit, burst, nil
}
