package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

// keySource is where the verification keys come from.
type keySource interface {
	// lookup returns the keys a token names: the one with kid, or all of them
	// when the token names none. An unknown kid may reload the set first.
	lookup(ctx context.Context, kid string) ([]jwkset.JWK, error)
	// current reports, without any network round trip, whether kid is still
	// in the set (a cached token whose key was withdrawn is verified again).
	current(kid string) bool
}

// urlKeys is a JWKS served over HTTP, kept by jwkset: fetched at start,
// refreshed in the background, and refreshed on an unknown kid through a
// rate limiter.
type urlKeys struct {
	mem    *jwkset.MemoryJWKSet // the last fetched set
	client jwkset.Storage       // mem plus the refresh on unknown kid
}

func newURLKeys(ctx context.Context, cfg VerifierConfig) (*urlKeys, error) {
	every := cfg.RefreshEvery
	if every <= 0 {
		every = 10 * time.Minute
	}
	unknownEvery := cfg.UnknownKIDEvery
	if unknownEvery <= 0 {
		unknownEvery = 30 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	onErr := func(context.Context, error) {}
	if cfg.OnRefreshError != nil {
		onErr = func(_ context.Context, err error) { cfg.OnRefreshError(err) }
	}
	// The refresh goroutine lives as long as ctx; a failed start must not
	// leave it behind.
	rctx, cancel := context.WithCancel(ctx)
	mem := jwkset.NewMemoryStorage()
	st, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:              hc,
		Ctx:                 rctx,
		HTTPTimeout:         10 * time.Second,
		RefreshInterval:     every,
		RefreshErrorHandler: onErr,
		Storage:             mem,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("AUTH_JWKS_URL: %w", err)
	}
	context.AfterFunc(ctx, cancel)
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{cfg.JWKSURL: st},
		// One token: the first unknown kid refreshes at once, the next ones
		// within the interval are refused straight away (Wait fails fast
		// when the next token lies beyond this bound), so a stream of
		// made-up kids neither hammers the identity provider nor holds
		// requests.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownEvery), 1),
		RateLimitWaitMax:  5 * time.Second,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("AUTH_JWKS_URL: %w", err)
	}
	return &urlKeys{mem: mem, client: client}, nil
}

func (u *urlKeys) lookup(ctx context.Context, kid string) ([]jwkset.JWK, error) {
	if kid == "" {
		return u.mem.KeyReadAll(ctx)
	}
	j, err := u.client.KeyRead(ctx, kid)
	if err != nil {
		return nil, err
	}
	return []jwkset.JWK{j}, nil
}

func (u *urlKeys) current(kid string) bool {
	if kid == "" {
		return true
	}
	_, err := u.mem.KeyRead(context.Background(), kid)
	return err == nil
}

// fileKeys is a JWKS file, read again when its modification time or size
// changes. A file that does not parse (caught mid-write, say) keeps the keys
// read before; only the first read must succeed.
type fileKeys struct {
	path  string
	onErr func(error)
	// every is VerifierConfig.JWKSFileCheckEvery: at most one stat per
	// interval, the last one at checked (nanoseconds since start, on the
	// monotonic clock). 0 stats on every use.
	every   time.Duration
	start   time.Time
	checked atomic.Int64

	mu   sync.RWMutex
	mod  time.Time // of the version in set
	size int64
	set  []jwkset.JWK
	// kids are set's key ids, index for index: JWK.Marshal builds a whole
	// JWKMarshal (allocating) just to read one, and every request looks one
	// up (current, for a cached token).
	kids []string
	// The version that failed to parse, so that a broken file is read and
	// reported once, not on every request.
	badMod  time.Time
	badSize int64
}

func newFileKeys(path string, onErr func(error), every time.Duration) (*fileKeys, error) {
	f := &fileKeys{path: path, onErr: onErr, every: every, start: time.Now()}
	if err := f.reload(); err != nil {
		return nil, fmt.Errorf("AUTH_JWKS_FILE: %w", err)
	}
	return f, nil
}

// reload reads the file again if it changed since the last read.
func (f *fileKeys) reload() error {
	fi, err := os.Stat(f.path)
	if err != nil {
		return err
	}
	mod, size := fi.ModTime(), fi.Size()
	f.mu.RLock()
	same := (mod.Equal(f.mod) && size == f.size && f.set != nil) || (mod.Equal(f.badMod) && size == f.badSize)
	f.mu.RUnlock()
	if same {
		return nil
	}
	data, err := os.ReadFile(f.path)
	if err == nil {
		var set []jwkset.JWK
		if set, err = parseJWKS(data); err == nil {
			kids := make([]string, len(set))
			for i, j := range set {
				kids[i] = j.Marshal().KID
			}
			f.mu.Lock()
			f.mod, f.size, f.set, f.kids = mod, size, set, kids
			f.mu.Unlock()
			return nil
		}
	}
	f.mu.Lock()
	f.badMod, f.badSize = mod, size
	f.mu.Unlock()
	return fmt.Errorf("%s: %w", f.path, err)
}

// keys returns the current set and its key ids (see fileKeys.kids),
// checking the file first when force is set or a check is due.
func (f *fileKeys) keys(force bool) ([]jwkset.JWK, []string) {
	if force && f.every > 0 {
		f.checked.Store(int64(time.Since(f.start))) // a check like any other
	}
	if force || f.due() {
		if err := f.reload(); err != nil && f.onErr != nil {
			f.onErr(err) // the last good set stands
		}
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.set, f.kids
}

// due reports whether this use should check the file: always without an
// interval, else for the one caller that claims an elapsed interval (the
// others go on with the set they have).
func (f *fileKeys) due() bool {
	if f.every <= 0 {
		return true
	}
	now := int64(time.Since(f.start))
	last := f.checked.Load()
	return now-last >= int64(f.every) && f.checked.CompareAndSwap(last, now)
}

// find returns the set and the index of kid in it (-1: not there). A kid
// not in the set last read makes the file be checked at once, whatever the
// interval, so that a newly published key is never refused for want of a
// check; only a withdrawal waits for the next one.
func (f *fileKeys) find(kid string) ([]jwkset.JWK, int) {
	set, kids := f.keys(false)
	i := slices.Index(kids, kid)
	if i < 0 && f.every > 0 {
		set, kids = f.keys(true)
		i = slices.Index(kids, kid)
	}
	return set, i
}

func (f *fileKeys) lookup(_ context.Context, kid string) ([]jwkset.JWK, error) {
	if kid == "" {
		set, _ := f.keys(false)
		return set, nil
	}
	if set, i := f.find(kid); i >= 0 {
		return []jwkset.JWK{set[i]}, nil
	}
	return nil, jwkset.ErrKeyNotFound
}

// current is lookup's success without building its answer: no kid is
// always current, as lookup then answers the whole set.
func (f *fileKeys) current(kid string) bool {
	if kid == "" {
		f.keys(false)
		return true
	}
	_, i := f.find(kid)
	return i >= 0
}

// parseJWKS reads a JWK Set; keys of a kind jwkset does not support are
// skipped (a set may hold keys for other uses), any other fault is an error.
func parseJWKS(data []byte) ([]jwkset.JWK, error) {
	var m jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	set := make([]jwkset.JWK, 0, len(m.Keys))
	for _, k := range m.Keys {
		j, err := jwkset.NewJWKFromMarshal(k, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		switch {
		case errors.Is(err, jwkset.ErrUnsupportedKey):
			continue
		case err != nil:
			return nil, fmt.Errorf("key %q: %w", k.KID, err)
		}
		set = append(set, j)
	}
	return set, nil
}
