//go:build pprof

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// A profiling build (go build -tags pprof) serves net/http/pprof on
// PPROF_ADDR, apart from the API's routes and middleware. Release builds have
// neither the handlers nor the variable.
func init() {
	startProfiling = func(ctx context.Context, log zerolog.Logger) (func(), error) {
		addr := os.Getenv("PPROF_ADDR")
		if addr == "" {
			return func() {}, nil
		}
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("PPROF_ADDR %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		log.Warn().Str("addr", ln.Addr().String()).Msg("profiling build: serving pprof on PPROF_ADDR; keep it private")
		return func() { _ = srv.Close() }, nil
	}
}
