// Package probe is the client side of a container health check: the
// `api healthcheck` and `projector healthcheck` subcommands, which a
// distroless image (no shell, no curl) runs to ask its own process whether it
// is up.
package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Timeout bounds one probe, connection and answer included.
const Timeout = 3 * time.Second

// Healthz asks http://addr/healthz and returns nil when it answers 200. addr is
// a listen address as the process was given it (":8080", "0.0.0.0:9090",
// "[::]:8080"): an unspecified host is probed on the loopback interface.
// Errors: a malformed addr, nothing answering within Timeout, or any other status.
func Healthz(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s answered %d", url, resp.StatusCode)
	}
	return nil
}
