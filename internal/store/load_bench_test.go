package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

// seedStream appends an account with n events in total, in chunks, through the
// store itself, so the rows are exactly what the service writes.
func seedStream(tb testing.TB, s *store.EventStore, n int) uuid.UUID {
	tb.Helper()
	ctx := context.Background()
	id := uuid.New()
	a, err := domain.Open(id, "bench", usd, 0, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	version := 0
	for a.Version() < n {
		if a.Version() > version+500 {
			if err := s.Append(ctx, command.Append{Account: a, ExpectedVersion: version}); err != nil {
				tb.Fatal(err)
			}
			version = a.Version()
			a.MarkCommitted()
		}
		if err := a.Deposit(1, usd, "", time.Now()); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Append(ctx, command.Append{Account: a, ExpectedVersion: version}); err != nil {
		tb.Fatal(err)
	}
	return id
}

// BenchmarkLoad compares loading a 100-event and a 10,000-event account, with
// and without snapshots: with them, both should cost about one snapshot read
// plus a short tail.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPool(b, pgtest.NewDatabase(b))
	for _, snapshots := range []bool{false, true} {
		for _, n := range []int{100, 10_000} {
			b.Run(fmt.Sprintf("events=%d/snapshots=%v", n, snapshots), func(b *testing.B) {
				s := store.NewEventStore(pool, store.Options{DefaultCurrency: usd})
				id := seedStream(b, s, n)
				if snapshots {
					writeSnapshotAt(b, s, id, n-n%100)
				}
				b.ResetTimer()
				for b.Loop() {
					a, err := s.Load(ctx, id)
					if err != nil || a.Version() != n {
						b.Fatalf("Load = version %d, %v", a.Version(), err)
					}
				}
			})
		}
	}
}

// writeSnapshotAt stores the state at version v, as SNAPSHOT_EVERY=100 would have.
func writeSnapshotAt(tb testing.TB, s *store.EventStore, id uuid.UUID, v int) {
	tb.Helper()
	ctx := context.Background()
	events, err := s.ReadStream(ctx, id, 0, v)
	if err != nil {
		tb.Fatal(err)
	}
	a := domain.NewAccount(id)
	for _, e := range events {
		a.Apply(e.Event, e.RecordedAt)
	}
	if err := s.SaveSnapshot(ctx, a.State()); err != nil {
		tb.Fatal(err)
	}
}
