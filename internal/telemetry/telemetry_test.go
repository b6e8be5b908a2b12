package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/telemetry"
)

func TestNewLoggerChecksLevelAndFormat(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "info", "json", "api")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug().Msg("hidden")
	log.Info().Msg("shown")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log is not one JSON line: %v: %q", err, buf.String())
	}
	if line["message"] != "shown" || line["process"] != "api" || line["level"] != "info" {
		t.Fatalf("log line %v", line)
	}
	for _, bad := range [][2]string{{"loud", "json"}, {"", "json"}, {"info", "xml"}} {
		if _, err := telemetry.NewLogger(io.Discard, bad[0], bad[1], "api"); err == nil {
			t.Errorf("NewLogger(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestMetricsAreExposed(t *testing.T) {
	t.Parallel()
	reg := telemetry.NewRegistry()
	httpm := telemetry.NewHTTPMetrics(reg)
	cmds := telemetry.NewCommandMetrics(reg)
	// A pool that never connects still has statistics to expose.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	telemetry.RegisterPool(reg, "events", pool)

	httpm.RequestFinished("/accounts/{id}/deposit", "POST", 200, 3*time.Millisecond)
	cmds.CommandFinished("deposit", "ok", time.Millisecond)
	cmds.CommandFinished("deposit", "conflict", time.Millisecond)
	cmds.ConflictRetried("deposit")
	cmds.IdempotentReplay("deposit")
	cmds.Appended(1, 2)

	rec := httptest.NewRecorder()
	telemetry.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`http_requests_total{method="POST",route="/accounts/{id}/deposit",status="200"} 1`,
		`bank_commands_total{command="deposit",outcome="ok"} 1`,
		`bank_concurrency_conflicts_total{command="deposit"} 1`,
		`bank_command_conflict_retries_total{command="deposit"} 1`,
		`bank_idempotent_replays_total{command="deposit"} 1`,
		`bank_events_appended_total 2`,
		`bank_transfer_recoveries_total{status="completed"} 0`,
		`bank_transfer_recoveries_total{status="returned"} 0`,
		`pgxpool_max_connections{pool="events"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
