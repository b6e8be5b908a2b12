// Package authtest is a token issuer for tests: it makes signing keys,
// publishes their JWKS as a file and over HTTP, and signs tokens with any
// claims, including the broken ones a verifier must refuse. Only tests
// import it.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// The defaults every Issuer starts with.
const (
	DefaultIssuer   = "https://issuer.test"
	DefaultAudience = "bank"
)

// Key is one signing key of an Issuer.
type Key struct {
	KID     string
	Alg     string // RS256, ES256 or EdDSA
	Private crypto.Signer
	// OmitAlg leaves "alg" out of the key's JWK, so that only the key type
	// ties it to an algorithm.
	OmitAlg bool
}

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// PublicPEM is the public key as a PEM block: the bytes an attacker would use
// as an HMAC secret.
func (k *Key) PublicPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		panic(err) // the three key types all marshal
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Issuer signs tokens with its keys and publishes their public halves.
type Issuer struct {
	t        testing.TB
	Issuer   string // the iss of its tokens (DefaultIssuer)
	Audience string // their aud (DefaultAudience)

	mu   sync.Mutex
	keys []*Key
	file string
	srv  *httptest.Server
	hits atomic.Int64
	n    int
}

// New returns an issuer with one ES256 key.
func New(t testing.TB) *Issuer {
	t.Helper()
	i := &Issuer{t: t, Issuer: DefaultIssuer, Audience: DefaultAudience}
	i.AddKey("ES256")
	return i
}

// NewKey makes a key of alg (RS256, ES256 or EdDSA) without publishing it.
func (i *Issuer) NewKey(alg string) *Key {
	i.t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("authtest: no key type for alg %q", alg)
	}
	if err != nil {
		i.t.Fatal(err)
	}
	i.mu.Lock()
	i.n++
	kid := fmt.Sprintf("%s-%d", alg, i.n)
	i.mu.Unlock()
	return &Key{KID: kid, Alg: alg, Private: priv}
}

// AddKey makes a key of alg and publishes it (JWKS file and URL alike).
func (i *Issuer) AddKey(alg string) *Key {
	i.t.Helper()
	k := i.NewKey(alg)
	i.Publish(k)
	return k
}

// Publish adds k to the published key set.
func (i *Issuer) Publish(k *Key) {
	i.t.Helper()
	i.mu.Lock()
	i.keys = append(i.keys, k)
	i.mu.Unlock()
	i.rewrite()
}

// Withdraw removes the key with kid from the published set.
func (i *Issuer) Withdraw(kid string) {
	i.t.Helper()
	i.mu.Lock()
	for n, k := range i.keys {
		if k.KID == kid {
			i.keys = append(i.keys[:n:n], i.keys[n+1:]...)
			break
		}
	}
	i.mu.Unlock()
	i.rewrite()
}

// Key returns the first published key.
func (i *Issuer) Key() *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[0]
}

// JWKS is the published key set as JSON.
func (i *Issuer) JWKS() []byte {
	i.t.Helper()
	i.mu.Lock()
	keys := append([]*Key(nil), i.keys...)
	i.mu.Unlock()
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range keys {
		meta := jwkset.JWKMetadataOptions{KID: k.KID, USE: jwkset.UseSig}
		if !k.OmitAlg {
			meta.ALG = jwkset.ALG(k.Alg)
		}
		j, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{Metadata: meta})
		if err != nil {
			i.t.Fatal(err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		i.t.Fatal(err)
	}
	return b
}

// File writes the key set to a JWKS file in a temporary directory (kept up
// to date by AddKey, Publish and Withdraw) and returns its path.
func (i *Issuer) File() string {
	i.t.Helper()
	i.mu.Lock()
	if i.file == "" {
		i.file = filepath.Join(i.t.TempDir(), "jwks.json")
	}
	i.mu.Unlock()
	i.rewrite()
	return i.file
}

// URL serves the key set over HTTP (always the current one) and returns its
// address; the server stops with the test.
func (i *Issuer) URL() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.srv == nil {
		i.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			i.hits.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(i.JWKS())
		}))
		i.t.Cleanup(i.srv.Close)
	}
	return i.srv.URL + "/.well-known/jwks.json"
}

// Fetches is how many times the JWKS URL was requested.
func (i *Issuer) Fetches() int64 { return i.hits.Load() }

// rewrite replaces the JWKS file, when there is one, in one rename so that a
// reader never sees half of it. The modification time is moved forward so
// that two writes within the file system's clock granularity still differ.
func (i *Issuer) rewrite() {
	i.t.Helper()
	i.mu.Lock()
	path := i.file
	i.mu.Unlock()
	if path == "" {
		return
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, i.JWKS(), 0o600); err != nil {
		i.t.Fatal(err)
	}
	if fi, err := os.Stat(path); err == nil {
		later := fi.ModTime().Add(time.Second)
		if err := os.Chtimes(tmp, later, later); err != nil {
			i.t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		i.t.Fatal(err)
	}
}

// Token describes a token to sign. The zero value is a valid token for
// "alice" with bank:read and bank:write, signed with the issuer's first key,
// valid for an hour.
type Token struct {
	// Key signs it (default: the issuer's first key).
	Key *Key
	// Alg is the header's alg (default: Key.Alg). "none" gives an unsigned
	// token; HS256 signs with HMACSecret; any other value signs with Key
	// under that algorithm.
	Alg        string
	HMACSecret []byte
	// KID is the header's kid (default Key.KID); NoKID leaves it out.
	KID   string
	NoKID bool
	// Claims are set over the defaults (iss, aud, sub, scope, iat, exp);
	// a nil value removes the claim. time.Time values become NumericDates.
	Claims map[string]any
}

// Sign returns the token tok describes.
func (i *Issuer) Sign(tok Token) string {
	i.t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":   i.Issuer,
		"aud":   i.Audience,
		"sub":   "alice",
		"scope": "bank:read bank:write",
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
	for k, v := range tok.Claims {
		switch v := v.(type) {
		case nil:
			delete(claims, k)
		case time.Time:
			claims[k] = v.Unix()
		default:
			claims[k] = v
		}
	}
	key := tok.Key
	if key == nil {
		key = i.Key()
	}
	alg := tok.Alg
	if alg == "" {
		alg = key.Alg
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		i.t.Fatalf("authtest: golang-jwt has no alg %q", alg)
	}
	t := jwt.NewWithClaims(method, claims)
	if !tok.NoKID {
		kid := tok.KID
		if kid == "" {
			kid = key.KID
		}
		t.Header["kid"] = kid
	}
	var signWith any = key.Private
	switch alg {
	case "none":
		signWith = jwt.UnsafeAllowNoneSignatureType
	case "HS256", "HS384", "HS512":
		signWith = tok.HMACSecret
	}
	s, err := t.SignedString(signWith)
	if err != nil {
		i.t.Fatalf("authtest: sign: %v", err)
	}
	return s
}

// TokenFor is a valid token for sub with the space-separated scope.
func (i *Issuer) TokenFor(sub, scope string) string {
	i.t.Helper()
	return i.Sign(Token{Claims: map[string]any{"sub": sub, "scope": scope}})
}
