package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/internal/httpapi"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

// TestReadinessInWords: the api's readiness check names what is wrong in
// words (DESIGN §2) and keeps the driver's error, with the server's address,
// for the log only.
func TestReadinessInWords(t *testing.T) {
	url, stop := pgtest.StoppableServer(t)
	pool := pgtest.NewPool(t, url)
	ready := readiness(pool, pool)
	ctx := context.Background()
	if err := ready(ctx); err != nil {
		t.Fatalf("readiness of a migrated database: %v", err)
	}

	if _, err := pool.Exec(ctx, `UPDATE read_schema_migrations SET version = 1`); err != nil {
		t.Fatal(err)
	}
	_ = wantReason(t, ready(ctx), fmt.Sprintf("read model schema at version 1, want %d", store.ReadModelSchema.Latest))
	if _, err := pool.Exec(ctx, `UPDATE read_schema_migrations SET version = 2, dirty = true`); err != nil {
		t.Fatal(err)
	}
	_ = wantReason(t, ready(ctx), fmt.Sprintf("read model schema at version 2 is dirty (a migration failed halfway), want %d", store.ReadModelSchema.Latest))

	stop()
	err := ready(ctx)
	nr := wantReason(t, err, "event store unreachable")
	// The driver's cause is kept for the log.
	if nr != nil && !dberr.IsUnavailable(nr.Err) {
		t.Errorf("the logged error %q does not carry the driver's cause", err)
	}
	// Once the pool's connections are gone, a new connection is refused: the
	// same words.
	_ = wantReason(t, ready(ctx), "event store unreachable")
}

func wantReason(t *testing.T, err error, reason string) *httpapi.NotReadyError {
	t.Helper()
	var nr *httpapi.NotReadyError
	if !errors.As(err, &nr) {
		t.Errorf("readiness error %v is not a *httpapi.NotReadyError", err)
		return nil
	}
	if nr.Reason != reason {
		t.Errorf("reason %q, want %q", nr.Reason, reason)
	}
	return nr
}
