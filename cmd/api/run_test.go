package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
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
