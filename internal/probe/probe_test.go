package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evbank/bank/internal/probe"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The forms a listen address takes: the host part is probed on loopback
	// when it is unspecified.
	for _, addr := range []string{":" + port, "0.0.0.0:" + port, "127.0.0.1:" + port} {
		if err := probe.Healthz(ctx, addr); err != nil {
			t.Errorf("Healthz(%q) = %v, want nil", addr, err)
		}
	}

	status.Store(http.StatusServiceUnavailable)
	if err := probe.Healthz(ctx, ":"+port); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("on a 503: %v, want an error naming the status", err)
	}
}

func TestHealthzFailures(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: take one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	if err := probe.Healthz(context.Background(), addr); err == nil {
		t.Errorf("Healthz(%q) with nothing listening = nil", addr)
	}
	if err := probe.Healthz(context.Background(), "8080"); err == nil {
		t.Error(`Healthz("8080") accepted an address without a port separator`)
	}
}
