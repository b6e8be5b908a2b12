// Package natsserver runs an embedded NATS server with JetStream, for tests
// and for `make run`: the real broker, in process, with no install step.
package natsserver

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a NATS server with JetStream on host:port (port -1: a free one),
// keeping its streams under dir (file storage survives a restart on the same
// dir). The caller calls Shutdown, then WaitForShutdown.
func Start(dir, host string, port int) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		ServerName: "bank-dev",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true, // the embedding process owns its signals
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats server: not ready for connections within 10s")
	}
	return s, nil
}
