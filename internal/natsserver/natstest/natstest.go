// Package natstest gives tests an embedded NATS JetStream server they can
// stop and start again on the same port and store, as a broker outage would.
package natstest

import (
	"fmt"
	"net"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/evbank/bank/internal/natsserver"
)

// Broker is a running (or stopped) embedded JetStream server.
type Broker struct {
	t    testing.TB
	dir  string
	port int
	s    *server.Server
}

// Start runs a broker on a free port of 127.0.0.1 with its store in a
// temporary directory; it is shut down when the test ends.
func Start(t testing.TB) *Broker {
	t.Helper()
	b := &Broker{t: t, dir: t.TempDir(), port: -1}
	b.Restart()
	b.port = b.s.Addr().(*net.TCPAddr).Port
	t.Cleanup(b.Stop)
	return b
}

// Restart starts the broker again on its port and store after Stop.
func (b *Broker) Restart() {
	b.t.Helper()
	s, err := natsserver.Start(b.dir, "127.0.0.1", b.port)
	if err != nil {
		b.t.Fatal(err)
	}
	b.s = s
}

// Stop shuts the broker down and waits until it has; a stopped broker stays so.
func (b *Broker) Stop() {
	if b.s != nil {
		b.s.Shutdown()
		b.s.WaitForShutdown()
		b.s = nil
	}
}

// URL is the broker's client URL.
func (b *Broker) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", b.port) }
