package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

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
	t.Setenv("PROJECTOR_ADDR", ":"+port)
	if err := run(context.Background(), []string{"healthcheck"}, &bytes.Buffer{}); err != nil {
		t.Errorf("healthcheck of a healthy projector: %v", err)
	}
	if err := run(context.Background(), []string{"healthcheck", "extra"}, &bytes.Buffer{}); err == nil {
		t.Error("healthcheck accepted an extra argument")
	}
	srv.Close()
	if err := run(context.Background(), []string{"healthcheck"}, &bytes.Buffer{}); err == nil {
		t.Error("healthcheck with nothing listening succeeded")
	}
}
