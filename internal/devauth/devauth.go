// Package devauth is local development's identity provider, for `make run`
// and `make token` only: one Ed25519 signing key under .data/auth and a JWKS
// file with its public half, which the api reads through AUTH_JWKS_FILE.
// Production never uses it (DESIGN §6: the service never issues tokens).
package devauth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// The claims the development api expects (AUTH_ISSUER, AUTH_AUDIENCE).
const (
	Issuer   = "bank-dev"
	Audience = "bank"
)

// Files are where the development key and its JWKS live under a data
// directory (.data). The JWKS is in a directory of its own so that it can be
// mounted into a container without the private key.
type Files struct {
	Key  string // PKCS #8 PEM, mode 0600
	JWKS string // the public key as a JWK Set, mode 0644
}

// Paths returns the files under dataDir.
func Paths(dataDir string) Files {
	dir := filepath.Join(dataDir, "auth")
	return Files{Key: filepath.Join(dir, "signing-key.pem"), JWKS: filepath.Join(dir, "public", "jwks.json")}
}

// Ensure returns the development signing key under dataDir, creating the key
// (and the directories) if absent and writing the JWKS file if it is missing
// or does not hold this key.
func Ensure(dataDir string) (ed25519.PrivateKey, Files, error) {
	f := Paths(dataDir)
	key, err := readKey(f.Key)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(f.Key)
	}
	if err != nil {
		return nil, f, err
	}
	jwks, err := JWKS(key)
	if err != nil {
		return nil, f, err
	}
	if old, err := os.ReadFile(f.JWKS); err == nil && bytes.Equal(old, jwks) {
		return key, f, nil
	}
	// World-readable on purpose: public keys, which the api's container
	// user (compose mounts this directory) must be able to read.
	if err := os.MkdirAll(filepath.Dir(f.JWKS), 0o755); err != nil {
		return nil, f, err
	}
	tmp := f.JWKS + ".tmp"
	if err := os.WriteFile(tmp, jwks, 0o644); err != nil {
		return nil, f, err
	}
	return key, f, os.Rename(tmp, f.JWKS)
}

func readKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key (delete it to make a new one)", path)
	}
	return ek, nil
}

func createKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	// 0755: it holds the public/ directory too; the key file itself is 0600.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// O_EXCL: two commands racing to create the key keep one of them.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readKey(path)
	}
	if err != nil {
		return nil, err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		_ = f.Close()
		return nil, err
	}
	return key, f.Close()
}

// KID names the key by its public half, so a new key gets a new kid.
func KID(key ed25519.PrivateKey) string {
	sum := sha256.Sum256(key.Public().(ed25519.PublicKey))
	return "dev-" + hex.EncodeToString(sum[:6])
}

// JWKS is the key's public half as a JWK Set.
func JWKS(key ed25519.PrivateKey) ([]byte, error) {
	j, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgEdDSA, KID: KID(key), USE: jwkset.UseSig},
	})
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{j.Marshal()}}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Token signs an access token for sub with the space-separated scope, valid
// for ttl.
func Token(key ed25519.PrivateKey, sub, scope string, ttl time.Duration) (string, error) {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss":   Issuer,
		"aud":   Audience,
		"sub":   sub,
		"scope": scope,
		"iat":   now.Unix(),
		"exp":   now.Add(ttl).Unix(),
	})
	t.Header["kid"] = KID(key)
	return t.SignedString(key)
}
