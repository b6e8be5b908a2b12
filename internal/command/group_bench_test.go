package command_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/pgserver"
	"github.com/evbank/bank/internal/store"
)

// BenchmarkHotAccounts: 64 goroutines deposit to 10 accounts through one
// service, on a private PostgreSQL with fsync and synchronous_commit on
// (what group commit saves is WAL flushes; the shared test server has none).
// group=1 appends each command alone; group=64 is the default. Compare their
// deposits/s in one run: go test -run '^$' -bench HotAccounts ./internal/command
func BenchmarkHotAccounts(b *testing.B) {
	ctx := context.Background()
	srv, err := pgserver.Start(ctx, pgserver.Options{Durable: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Stop() })
	url := srv.URL("postgres")
	if err := store.Migrate(url, store.EventStoreSchema); err != nil {
		b.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 20 // DB_MAX_CONNS's default
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	es := store.NewEventStore(pool, store.Options{DefaultCurrency: usd})
	for _, group := range []int{1, 64} {
		b.Run(fmt.Sprintf("group=%d", group), func(b *testing.B) {
			svc := command.NewService(es, command.Config{DefaultCurrency: usd, MaxGroup: group, MaxAttempts: 100})
			ids := make([]uuid.UUID, 10)
			for i := range ids {
				ids[i] = uuid.New()
				if _, err := svc.OpenAccount(ctx, command.OpenAccount{ID: ids[i], OwnerID: "bench"}, command.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.SetParallelism(32) // 64 goroutines on two cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := ids[rand.IntN(len(ids))]
					if _, err := svc.Deposit(ctx, command.Deposit{AccountID: id, Amount: "1.00"}, command.Options{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deposits/s")
		})
	}
}
