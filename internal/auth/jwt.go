package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// VerifierConfig is what a JWT verifier needs to know (DESIGN §6). Exactly one
// of JWKSURL and JWKSFile is set.
type VerifierConfig struct {
	// JWKSURL is fetched at start (an error if that fails), refreshed every
	// RefreshEvery in the background, and once more when a token names an
	// unknown kid, at most every UnknownKIDEvery.
	JWKSURL string
	// JWKSFile is a JWKS JSON file, read again whenever its modification time
	// or size changes (one stat, no watcher to manage).
	JWKSFile string
	// JWKSFileCheckEvery bounds how often JWKSFile is checked for a change:
	// 0 checks on every use; a positive interval at most once per interval,
	// sparing the busy request path a stat each, but a token naming a kid
	// not in the keys last read checks at once (a new key works as soon
	// as it is published; a withdrawn one is refused within the interval).
	JWKSFileCheckEvery time.Duration
	Issuer             string
	Audience           string
	// Leeway is the clock skew allowed on exp, nbf and iat (AUTH_CLOCK_SKEW).
	Leeway time.Duration

	// CacheSize bounds the verified-token cache: 0 means DefaultCacheSize,
	// a negative value turns the cache off.
	CacheSize int
	// RefreshEvery is the background refresh of JWKSURL (default 10m).
	RefreshEvery time.Duration
	// UnknownKIDEvery rate-limits the refresh an unknown kid causes (default 30s).
	UnknownKIDEvery time.Duration
	// HTTPClient fetches JWKSURL (default: a client with a 10 s timeout).
	HTTPClient *http.Client
	// OnRefreshError hears about failed refreshes of the URL and about a
	// JWKS file that changed but does not parse (once per version of it);
	// the keys known before stay in use. nil ignores them.
	OnRefreshError func(error)
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// DefaultCacheSize is the number of verified tokens kept when
// VerifierConfig.CacheSize is 0: enough for every active client of one
// instance, small enough (about 200 bytes an entry) to be no memory concern.
const DefaultCacheSize = 10000

// maxSubjectChars is DESIGN §6's bound on sub, the same as owner_id's.
const maxSubjectChars = 128

// Verifier is the Authenticator of AUTH_MODE=jwt: it checks a bearer JWT's
// signature against a JWKS and its claims against the configuration.
type Verifier struct {
	keys   keySource
	parser *jwt.Parser
	now    func() time.Time
	cache  *tokenCache // nil: off
}

// The reasons a token is refused, as the problem's detail words them.
var (
	errAlgNotAllowed = &Error{Reason: "signing algorithm not allowed (RS256, ES256 or EdDSA only)"}
	errAlgMismatch   = &Error{Reason: "signing algorithm does not match the key"}
	errUnknownKey    = &Error{Reason: "unknown signing key"}
	errMalformed     = &Error{Reason: "malformed token"}
	errSignature     = &Error{Reason: "signature does not verify"}
	errExpired       = &Error{Reason: "expired"}
	errNotYetValid   = &Error{Reason: "not valid yet (nbf)"}
	errIssuedFuture  = &Error{Reason: "issued in the future (iat)"}
	errIssuer        = &Error{Reason: "wrong issuer"}
	errAudience      = &Error{Reason: "wrong audience"}
	errNoExpiry      = &Error{Reason: "no expiry (exp)"}
	errNoSubject     = &Error{Reason: "no subject (sub)"}
	errLongSubject   = &Error{Reason: "subject longer than 128 characters"}
)

// Check says what the configuration lacks, naming the settings: an issuer,
// an audience and exactly one JWKS source.
func (cfg VerifierConfig) Check() error {
	var missing []string
	if cfg.Issuer == "" {
		missing = append(missing, "AUTH_ISSUER")
	}
	if cfg.Audience == "" {
		missing = append(missing, "AUTH_AUDIENCE")
	}
	if cfg.JWKSURL == "" && cfg.JWKSFile == "" {
		missing = append(missing, "AUTH_JWKS_URL or AUTH_JWKS_FILE")
	}
	if len(missing) > 0 {
		return fmt.Errorf("AUTH_MODE=jwt needs %s", strings.Join(missing, ", "))
	}
	if cfg.JWKSURL != "" && cfg.JWKSFile != "" {
		return errors.New("AUTH_MODE=jwt takes one JWKS source: set AUTH_JWKS_URL or AUTH_JWKS_FILE, not both")
	}
	return nil
}

// NewVerifier loads the key set and returns a verifier. ctx bounds the first
// fetch of a JWKS URL and, when it ends, stops the background refresh. The
// error says which setting is wrong or which source could not be read.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	var (
		keys keySource
		err  error
	)
	source := "AUTH_JWKS_URL"
	if cfg.JWKSURL != "" {
		keys, err = newURLKeys(ctx, cfg)
	} else {
		source = "AUTH_JWKS_FILE"
		keys, err = newFileKeys(cfg.JWKSFile, cfg.OnRefreshError, cfg.JWKSFileCheckEvery)
	}
	if err != nil {
		return nil, err
	}
	// A key set no token could ever verify against is a configuration
	// mistake (the wrong file, a key set for encryption): say so at start.
	if !anyUsableKey(ctx, keys) {
		return nil, fmt.Errorf("%s: the key set has no RS256, ES256 or EdDSA public key", source)
	}
	v := &Verifier{
		keys: keys,
		now:  now,
		parser: jwt.NewParser(
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
			// The algorithm is checked in keyfunc (allowedAlg), before any
			// key is looked up, so that the refusal can say why; the parser's
			// own WithValidMethods would report it as a bad signature.
		),
	}
	switch size := cfg.CacheSize; {
	case size == 0:
		v.cache = newTokenCache(DefaultCacheSize)
	case size > 0:
		v.cache = newTokenCache(size)
	}
	return v, nil
}

// claims are the parts of an access token the service reads.
type claims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
}

// Authenticate verifies token and returns the principal it names. "" is
// ErrNoToken; any failed check is an *Error whose Reason names the check.
func (v *Verifier) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoToken
	}
	var key [sha256.Size]byte
	if v.cache != nil {
		key = tokenKey(token)
		// A hit skips the signature check, but not the key set: a token
		// whose key has been withdrawn from the JWKS is verified again (and
		// refused).
		if e, ok := v.cache.get(key, v.now()); ok && v.keys.current(e.kid) {
			return e.p, nil
		}
	}

	var c claims
	tok, err := v.parser.ParseWithClaims(token, &c, v.keyfunc(ctx))
	if err != nil {
		return Principal{}, reason(err, &c)
	}
	switch {
	case c.Subject == "":
		return Principal{}, errNoSubject
	case utf8.RuneCountInString(c.Subject) > maxSubjectChars:
		return Principal{}, errLongSubject
	}
	p := Principal{Subject: c.Subject, Scopes: ParseScopes(c.Scope)}
	if v.cache != nil {
		kid, _ := tok.Header["kid"].(string)
		v.cache.put(key, cacheEntry{p: p, exp: c.ExpiresAt.Time, kid: kid}, v.now())
	}
	return p, nil
}

// tokenKey is the cache's key for token, its SHA-256. []byte(token) would
// be a heap copy of the whole token on every request (the compiler keeps
// only short conversions on the stack); a token that fits is hashed from a
// stack buffer instead.
func tokenKey(token string) [sha256.Size]byte {
	var buf [2048]byte
	if len(token) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], token)])
	}
	return sha256.Sum256([]byte(token))
}

// allowedAlg maps each accepted JWS algorithm to the key type it needs.
var allowedAlg = map[string]func(crypto.PublicKey) bool{
	"RS256": func(k crypto.PublicKey) bool {
		// Below 2048 bits RSA is not a signature worth trusting (NIST SP 800-131A).
		rk, ok := k.(*rsa.PublicKey)
		return ok && rk.N.BitLen() >= 2048
	},
	"ES256": func(k crypto.PublicKey) bool {
		ek, ok := k.(*ecdsa.PublicKey)
		return ok && ek.Curve == elliptic.P256()
	},
	"EdDSA": func(k crypto.PublicKey) bool {
		_, ok := k.(ed25519.PublicKey)
		return ok
	},
}

// keyfunc picks the key for a token: only an allowed algorithm, only keys
// whose JWK alg (when present) and key type are that algorithm's. It runs
// before the parser checks any signature, so none, HMAC (whatever the key
// bytes) and algorithms such as PS256 never reach a verifier.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		fits, ok := allowedAlg[alg]
		if !ok {
			return nil, errAlgNotAllowed
		}
		kid, _ := t.Header["kid"].(string)
		jwks, err := v.keys.lookup(ctx, kid)
		if err != nil || len(jwks) == 0 {
			return nil, errUnknownKey
		}
		var keys []jwt.VerificationKey
		for _, j := range jwks {
			if a := j.Marshal().ALG.String(); a != "" && a != alg {
				continue
			}
			k := publicKey(j.Key())
			if fits(k) {
				keys = append(keys, k)
			}
		}
		switch len(keys) {
		case 0:
			return nil, errAlgMismatch
		case 1:
			return keys[0], nil
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
}

func anyUsableKey(ctx context.Context, keys keySource) bool {
	set, err := keys.lookup(ctx, "")
	if err != nil {
		return false
	}
	for _, j := range set {
		a := j.Marshal().ALG.String()
		for alg, fits := range allowedAlg {
			if (a == "" || a == alg) && fits(publicKey(j.Key())) {
				return true
			}
		}
	}
	return false
}

// publicKey is k's public half: a JWKS may carry private parameters, and
// golang-jwt verifies with public keys only.
func publicKey(k any) crypto.PublicKey {
	if pk, ok := k.(interface{ Public() crypto.PublicKey }); ok {
		return pk.Public()
	}
	return k
}

// reason maps golang-jwt's error to the check that failed; c holds the
// claims as far as they were decoded.
func reason(err error, c *claims) error {
	var ours *Error
	switch {
	case errors.As(err, &ours):
		return ours
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// The only other cause: an alg golang-jwt does not even know.
		return errAlgNotAllowed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errSignature
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// Reported the same for exp, iss and aud: tell them apart.
		switch {
		case c.Issuer == "":
			return errIssuer
		case len(c.Audience) == 0:
			return errAudience
		}
		return errNoExpiry
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return errIssuedFuture
	case errors.Is(err, jwt.ErrInvalidType):
		return &Error{Reason: "a claim has the wrong type"}
	}
	return &Error{Reason: "not accepted"}
}
