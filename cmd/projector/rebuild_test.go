package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/evbank/bank/internal/projection"
	"github.com/evbank/bank/internal/testwait"
)

// TestRebuildCommand runs `projector rebuild` beside a serving projector: an
// interrupted run exits 3, the next resumes, swaps in tables that verify
// finds equal to the event store, and the live projector goes on applying.
func TestRebuildCommand(t *testing.T) {
	eventsURL, readURL := setEnv(t)
	leaks := goleak.IgnoreCurrent()
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	events, read := testPools(t, eventsURL, readURL)

	serveCtx, stopServe := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- serve(serveCtx, cfg, zerolog.New(zerolog.NewTestWriter(t)), ready) }()
	select {
	case <-ready:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}
	ids := make([]uuid.UUID, 5)
	for i := range ids {
		ids[i] = uuid.New()
		appendAccount(t, events, ids[i], 4)
	}

	// Interrupted (a context already cancelled stops it after its first chunk).
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	err = run(cancelled, []string{"rebuild", "daily_summaries", "account_balances"}, &out)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != rebuildInterrupted || !errors.Is(err, projection.ErrRebuildInterrupted) {
		t.Fatalf("interrupted rebuild: %v\n%s", err, out.String())
	}
	appendAccount(t, events, uuid.New(), 2)

	out.Reset()
	if err := run(context.Background(), []string{"rebuild", "account_balances", "daily_summaries"}, &out); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	for _, s := range []string{`"resumed":true`, "rebuilt account_balances, daily_summaries from 28 events", `"message":"rebuild progress"`} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("rebuild output lacks %q:\n%s", s, out.String())
		}
	}

	// The live projector reloads its moved checkpoints and goes on.
	for v := 6; v <= 7; v++ {
		if _, err := events.Exec(context.Background(), `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
VALUES ($1, 'BankAccount', $2, $3, 'MoneyDeposited', 2, '{"amount_minor":100,"currency":"USD","description":"after"}')`, ids[0], v, uuid.New()); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, 10*time.Second, func() (bool, string) {
		var v int
		err := read.QueryRow(context.Background(), `SELECT version FROM account_balances WHERE account_id = $1`, ids[0]).Scan(&v)
		return err == nil && v == 7, fmt.Sprintf("the live projector did not apply after the rebuild: version %d, %v", v, err)
	})
	stopServe()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"verify"}, &out); err != nil || !strings.Contains(out.String(), "no drift: 6 accounts") {
		t.Fatalf("verify after the rebuild: %v\n%s", err, out.String())
	}
	events.Close()
	read.Close()
	goleak.VerifyNone(t, leaks)
}

// TestRebuildProgressOnTerminal checks the updating line and the log hook.
func TestRebuildProgressOnTerminal(t *testing.T) {
	var screen bytes.Buffer
	p := &progressPrinter{w: &screen, terminal: true, every: time.Hour}
	log := zerolog.New(&screen).Hook(p)
	p.update(projection.RebuildProgress{Phase: projection.PhaseLoad, Done: 250_000, Total: 1_000_000, Rate: 50_000, ETA: 15 * time.Second, Elapsed: 5 * time.Second})
	log.Info().Msg("a log line")
	p.update(projection.RebuildProgress{Phase: projection.PhaseIndex, Done: 1_000_000, Total: 1_000_000, Rate: 90_000, Detail: "index transaction_history_pkey_rebuild"})
	p.end()
	want := "\r\x1b[Krebuild load      25.0%  250,000/1,000,000 events  50,000 events/s  ETA 15s  5s" +
		"\r\x1b[K" + `{"level":"info","message":"a log line"}` + "\n" +
		"\r\x1b[Krebuild index    100.0%  1,000,000/1,000,000 events  90,000 events/s  0s  index transaction_history_pkey_rebuild\n"
	if screen.String() != want {
		t.Errorf("screen:\n%q\nwant\n%q", screen.String(), want)
	}
}
