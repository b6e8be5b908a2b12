package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/testwait"
)

// Tests here set environment variables, so none runs in parallel.

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestUsageListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"DATABASE_URL", "READ_DATABASE_URL", "PROJECTOR_ADDR", ":9090", "MIGRATE_ON_START", "LOG_LEVEL", "LOG_FORMAT",
		"DEFAULT_CURRENCY", "USD", "SHUTDOWN_TIMEOUT", "15s", "PROJECTOR_BATCH_SIZE", "PROJECTOR_POLL_INTERVAL", "verify",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage does not mention %s:\n%s", s, out.String())
		}
	}
}

func TestBadConfigAndCommands(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	if err := run(context.Background(), nil, io.Discard); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("without DATABASE_URL: %v", err)
	}
	t.Setenv("DATABASE_URL", "postgres://x@127.0.0.1:1/x")
	t.Setenv("DEFAULT_CURRENCY", "XAU")
	if err := run(context.Background(), nil, io.Discard); err == nil || !strings.Contains(err.Error(), "DEFAULT_CURRENCY") {
		t.Errorf("DEFAULT_CURRENCY=XAU: %v", err)
	}
	t.Setenv("DEFAULT_CURRENCY", "USD")
	if err := run(context.Background(), []string{"frobnicate"}, io.Discard); err == nil {
		t.Error("unknown command accepted")
	}
	if err := run(context.Background(), []string{"rebuild", "balances"}, io.Discard); err == nil || !strings.Contains(err.Error(), `unknown projection "balances"`) {
		t.Errorf("rebuild balances: %v", err)
	}
}

// setEnv points the projector at an event store and a separate, empty read
// database that it must migrate itself.
func setEnv(t *testing.T) (eventsURL, readURL string) {
	t.Helper()
	eventsURL, readURL = pgtest.NewDatabase(t), pgtest.NewEmptyDatabase(t)
	t.Setenv("DATABASE_URL", eventsURL)
	t.Setenv("READ_DATABASE_URL", readURL)
	t.Setenv("PROJECTOR_ADDR", "127.0.0.1:0")
	t.Setenv("PROJECTOR_POLL_INTERVAL", "5ms")
	t.Setenv("SHUTDOWN_TIMEOUT", "5s")
	t.Setenv("PROJECTOR_BATCH_TIMEOUT", "4s")
	t.Setenv("LOG_LEVEL", "debug")
	return eventsURL, readURL
}

func appendAccount(t *testing.T, pool *pgxpool.Pool, id uuid.UUID, deposits int) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
VALUES ($1, 'BankAccount', 1, $2, 'AccountOpened', 2, $3)`, id, uuid.New(),
		fmt.Sprintf(`{"account_id":%q,"owner_id":"o","currency":"USD","opened_at":"2024-01-01T00:00:00Z"}`, id)); err != nil {
		t.Fatal(err)
	}
	for v := 2; v <= deposits+1; v++ {
		// Legacy shape, upcast with DEFAULT_CURRENCY.
		if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
VALUES ($1, 'BankAccount', $2, $3, 'MoneyDeposited', 1, '{"amount":2.5,"description":"d"}')`, id, v, uuid.New()); err != nil {
			t.Fatal(err)
		}
	}
}

// testPools opens pools on the two databases, closed when the test ends
// (closing them earlier is fine).
func testPools(t *testing.T, eventsURL, readURL string) (events, read *pgxpool.Pool) {
	t.Helper()
	events, err := pgxpool.New(context.Background(), eventsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(events.Close)
	read, err = pgxpool.New(context.Background(), readURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	return events, read
}

// client keeps no connections, so that nothing of it outlives a request.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeProjectsAndShutsDown(t *testing.T) {
	eventsURL, readURL := setEnv(t)
	leaks := goleak.IgnoreCurrent()
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	base := "http://" + addr

	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d", code)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d %s", code, body)
	}

	events, read := testPools(t, eventsURL, readURL)
	id := uuid.New()
	appendAccount(t, events, id, 3)
	var balance int64
	testwait.Until(t, 10*time.Second, func() (bool, string) {
		err := read.QueryRow(context.Background(), `SELECT balance_minor FROM account_balances WHERE account_id = $1 AND version = 4`, id).Scan(&balance)
		return err == nil, fmt.Sprintf("account not projected: %v", err)
	})
	if balance != 750 {
		t.Fatalf("balance %d, want 750", balance)
	}
	_, metrics := get(t, base+"/metrics")
	for _, s := range []string{"projector_active 1", `projector_events_applied_total{projection="transaction_history"} 4`, "projector_lag_positions", "projector_batch_duration_seconds_bucket", "pgxpool_connections"} {
		if !strings.Contains(metrics, s) {
			t.Errorf("/metrics lacks %q", s)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(cfg.ShutdownTimeout + time.Second):
		t.Fatal("serve did not return within SHUTDOWN_TIMEOUT")
	}

	// verify agrees, then names the account whose balance is corrupted.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"verify"}, &out); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "no drift: 1 accounts") {
		t.Errorf("verify output:\n%s", out.String())
	}
	if _, err := read.Exec(context.Background(), `UPDATE account_balances SET balance_minor = 1 WHERE account_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(context.Background(), []string{"verify"}, &out)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), id.String()) || !strings.Contains(out.String(), "balance_minor is 1") {
		t.Fatalf("verify after corruption: %v\n%s", err, out.String())
	}
	events.Close()
	read.Close()
	goleak.VerifyNone(t, leaks)
}

func TestReadyzUnavailableWithoutReadSchema(t *testing.T) {
	setEnv(t)
	t.Setenv("MIGRATE_ON_START", "false") // the empty read database stays empty
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)), ready) }()
	addr := <-ready
	if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "read model") {
		t.Errorf("/readyz = %d %s, want 503 naming the read model", code, body)
	}
	if code, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestReadyzUnavailableWhileBatchesFail: batches that keep failing turn
// /readyz 503 after PROJECTOR_FAILING_AFTER, in words that name the event,
// and ready again once a batch succeeds.
func TestReadyzUnavailableWhileBatchesFail(t *testing.T) {
	eventsURL, readURL := setEnv(t)
	t.Setenv("PROJECTOR_FAILING_AFTER", "500ms")
	t.Setenv("PROJECTOR_STANDBY_RETRY", "100ms")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)), ready) }()
	base := "http://" + <-ready
	events, read := testPools(t, eventsURL, readURL)

	// A write the read database refuses, whatever the cause.
	if _, err := read.Exec(context.Background(), `ALTER TABLE account_balances ADD CONSTRAINT poison CHECK (owner_id <> 'o')`); err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	appendAccount(t, events, id, 1)
	testwait.Until(t, 15*time.Second, func() (bool, string) {
		code, body := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "failing") && strings.Contains(body, id.String()),
			fmt.Sprintf("/readyz %d %s", code, body)
	})
	_, metrics := get(t, base+"/metrics")
	if !strings.Contains(metrics, "projector_batch_failures_total") || strings.Contains(metrics, "projector_batch_failures_total 0\n") {
		t.Errorf("/metrics does not count the failures")
	}
	if _, err := read.Exec(context.Background(), `ALTER TABLE account_balances DROP CONSTRAINT poison`); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 15*time.Second, func() (bool, string) {
		code, body := get(t, base+"/readyz")
		return code == http.StatusOK, fmt.Sprintf("/readyz %d %s after the cause is gone", code, body)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
