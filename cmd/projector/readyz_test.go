package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/pgtest"
)

// TestReadyzInWordsWhenDatabaseStopped: with PostgreSQL stopped under a
// running projector, /readyz is 503 and says "event store unreachable", never
// the connection string, host, port or the driver's message (DESIGN §2).
func TestReadyzInWordsWhenDatabaseStopped(t *testing.T) {
	url, stop := pgtest.StoppableServer(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("READ_DATABASE_URL", url)
	t.Setenv("MIGRATE_ON_START", "false") // StoppableServer migrated it
	t.Setenv("PROJECTOR_ADDR", "127.0.0.1:0")
	t.Setenv("PROJECTOR_POLL_INTERVAL", "5ms")
	t.Setenv("SHUTDOWN_TIMEOUT", "5s")
	t.Setenv("PROJECTOR_BATCH_TIMEOUT", "4s")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	connCfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)), ready) }()
	addr := <-ready
	if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the stop = %d %s", code, body)
	}

	stop()
	code, body := get(t, "http://"+addr+"/readyz")
	var got struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if code != http.StatusServiceUnavailable || got.Status != "unavailable" || got.Error != "event store unreachable" {
		t.Errorf("/readyz = %d %s, want 503 saying the event store is unreachable", code, body)
	}
	for _, leak := range []string{strconv.Itoa(int(connCfg.Port)), connCfg.Host, "postgres", "SQLSTATE", "dial", "refused"} {
		if strings.Contains(body, leak) {
			t.Errorf("/readyz tells the client %q: %s", leak, body)
		}
	}

	cancel()
	select {
	case err := <-done:
		// Any error is the stopped database's: logged, not the point here.
		t.Logf("serve returned %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
}
