package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/auth"
)

// Tests here set environment variables, so none runs in parallel.

func TestUsageListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "NAME") || !strings.Contains(out.String(), "MEANING") {
		t.Errorf("usage has no table header:\n%s", out.String())
	}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[config]()) {
		if f.Anonymous {
			continue // the shared settings: their fields are visited too
		}
		key := f.Tag.Get("envconfig")
		if key == "" || !strings.Contains(out.String(), "\n  "+key+" ") {
			t.Errorf("usage has no row for %s (field %s):\n%s", key, f.Name, out.String())
		}
	}
	for _, s := range []string{"migrate", "healthcheck", "(required)", ":8080"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage does not mention %s", s)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", "postgres://unused@127.0.0.1:1/unused")
	t.Setenv("HTTP_ADDR", ":"+port)
	if err := run(context.Background(), []string{"healthcheck"}, &bytes.Buffer{}); err != nil {
		t.Errorf("healthcheck of a healthy api: %v", err)
	}
	srv.Close()
	if err := run(context.Background(), []string{"healthcheck"}, &bytes.Buffer{}); err == nil {
		t.Error("healthcheck with nothing listening succeeded")
	}
}

// TestJWTModeNamesWhatIsMissing: in jwt mode (the default) the api refuses to
// start, before touching the database, and names the missing settings.
func TestJWTModeNamesWhatIsMissing(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://unused@127.0.0.1:1/unused")
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{}, []string{"AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_URL or AUTH_JWKS_FILE"}},
		{map[string]string{"AUTH_ISSUER": "i", "AUTH_JWKS_FILE": "/x"}, []string{"AUTH_AUDIENCE"}},
		{map[string]string{"AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"}, []string{"AUTH_JWKS_URL or AUTH_JWKS_FILE"}},
		{map[string]string{"AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a", "AUTH_JWKS_FILE": "/x", "AUTH_JWKS_URL": "http://x"}, []string{"one JWKS source"}},
		{map[string]string{"AUTH_MODE": "basic"}, []string{`AUTH_MODE="basic"`}},
		{map[string]string{"AUTH_MODE": "none", "RATE_LIMIT": "-1"}, []string{"RATE_LIMIT"}},
		{map[string]string{"AUTH_MODE": "none", "COMMAND_GROUP_MAX": "0"}, []string{"COMMAND_GROUP_MAX"}},
	} {
		for _, k := range []string{"AUTH_MODE", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_FILE", "AUTH_JWKS_URL", "RATE_LIMIT", "COMMAND_GROUP_MAX"} {
			t.Setenv(k, "") // restored after the test
			if v, ok := tc.env[k]; ok {
				t.Setenv(k, v)
			} else if err := os.Unsetenv(k); err != nil {
				t.Fatal(err)
			}
		}
		err := run(context.Background(), nil, &bytes.Buffer{})
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: err = %v, want it to name %s", tc.env, err, w)
			}
		}
	}
}

// TestAuthModeNoneWarns: AUTH_MODE=none says loudly that nobody is checked.
func TestAuthModeNoneWarns(t *testing.T) {
	var out bytes.Buffer
	a, err := newAuthenticator(context.Background(), config{AuthMode: authNone}, zerolog.New(&out))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(auth.None); !ok {
		t.Errorf("AUTH_MODE=none gave %T, want auth.None", a)
	}
	if !strings.Contains(out.String(), `"level":"warn"`) || !strings.Contains(out.String(), "AUTHENTICATION IS OFF") {
		t.Errorf("no loud warning: %s", out.String())
	}
}

func TestRateLimitBurstDefault(t *testing.T) {
	for _, tc := range []struct {
		rate   float64
		burst  int
		wantPS float64
		wantB  int
	}{{0, 0, 0, 0}, {10, 0, 10, 20}, {0.2, 0, 0.2, 1}, {10, 3, 10, 3}} {
		ps, b, err := config{RateLimit: tc.rate, RateLimitBurst: tc.burst}.rateLimit()
		if err != nil || ps != tc.wantPS || b != tc.wantB {
			t.Errorf("RATE_LIMIT=%v RATE_LIMIT_BURST=%d: %v, %d, %v; want %v, %d", tc.rate, tc.burst, ps, b, err, tc.wantPS, tc.wantB)
		}
	}
}
