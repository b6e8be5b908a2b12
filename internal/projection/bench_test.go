package projection

// Benchmarks for the wake-up decision and the apply rate. Run them against a
// durable server (the throwaway test server has fsync and synchronous_commit
// off, which hides what NOTIFY costs at commit):
//
//	TEST_DATABASE_URL=postgres://... go test -run '^$' -bench . -benchtime 1x ./internal/projection/
//
// Figures on a shared 2-vCPU machine, PostgreSQL 15, fsync and synchronous_commit
// on (three runs each; read absolute numbers as rough, the ratios repeat):
//
//	appends/s, one event per transaction   clients=1    4          16         64
//	  without NOTIFY                        1.5-1.7k     1.9-3.8k   3.5-4.1k   3.3-4.7k
//	  pg_notify in the append transaction   1.0-1.3k     1.4k       0.9-1.2k   2.1-2.3k
//
//	commit-to-read latency, one append every 0-40 ms    p50      p90      max
//	  adaptive polling (1 ms doubling to 50 ms)          5.0 ms   16 ms    33 ms
//	  LISTEN, woken by NOTIFY                            0.4 ms   0.6 ms   7 ms
//
//	apply rate, Runner catching up on 1000 accounts x 100 events, each batch
//	touching 1000 accounts (worst case: every row of every table rewritten)
//	  batch=100: 12k events/s   batch=1000: 16k events/s   batch=5000: 17k events/s
//
// NOTIFY takes a cluster-wide lock at commit and holds it through the WAL flush,
// so it costs 60-75 % of append throughput from 16 clients up, to save about
// 5 ms of median wake-up latency. The projector polls; the queries it makes
// when idle (20/s at most) are index probes.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

func benchPool(b *testing.B, url string, maxConns int32) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// BenchmarkAppendNotify measures single-event appends (each into a fresh
// stream, the shape of an account opening) from N clients for a fixed time,
// with and without NOTIFY in the transaction.
func BenchmarkAppendNotify(b *testing.B) {
	for _, clients := range []int{1, 4, 16, 64} {
		for _, notify := range []bool{false, true} {
			b.Run(fmt.Sprintf("clients=%d/notify=%v", clients, notify), func(b *testing.B) {
				pool := benchPool(b, pgtest.NewDatabase(b), int32(clients))
				ctx := context.Background()
				const runFor = 3 * time.Second
				var n atomic.Int64
				b.ResetTimer()
				for range b.N {
					deadline := time.Now().Add(runFor)
					var wg sync.WaitGroup
					for range clients {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for time.Now().Before(deadline) {
								id := uuid.New()
								typ, sv, data := eventFor(id, 1)
								err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
									if _, err := tx.Exec(ctx, insertSQL, id, 1, uuid.New(), typ, sv, data); err != nil {
										return err
									}
									if notify {
										_, err := tx.Exec(ctx, `SELECT pg_notify('events', '')`)
										return err
									}
									return nil
								})
								if err != nil {
									b.Error(err)
									return
								}
								n.Add(1)
							}
						}()
					}
					wg.Wait()
				}
				b.ReportMetric(float64(n.Load())/(runFor.Seconds()*float64(b.N)), "appends/s")
			})
		}
	}
}

// BenchmarkWakeLatency appends one event at random intervals (0-40 ms) and
// measures how long after its commit a reader has it: polling with the
// Runner's backoff, or woken by LISTEN (with the same read after the wake-up).
func BenchmarkWakeLatency(b *testing.B) {
	for _, mode := range []string{"poll", "listen"} {
		b.Run(mode, func(b *testing.B) {
			url := pgtest.NewDatabase(b)
			pool := benchPool(b, url, 4)
			tl := store.NewTailer(pool, domain.UpcastContext{DefaultCurrency: domain.MustCurrency("USD")})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			const events = 200
			committed := make(map[uuid.UUID]time.Time, events)
			var mu sync.Mutex
			var lat []time.Duration

			listener, err := pgx.Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = listener.Close(context.Background()) }()
			if _, err := listener.Exec(ctx, `LISTEN events`); err != nil {
				b.Fatal(err)
			}
			readerDone := make(chan struct{})
			go func() {
				defer close(readerDone)
				var after eventlog.Position
				poll := time.Millisecond
				for ctx.Err() == nil {
					tb, err := tl.Read(ctx, after, 1000)
					if err != nil {
						return
					}
					now := time.Now()
					for _, e := range tb.Events {
						after = eventlog.PositionOf(e)
						mu.Lock()
						if t, ok := committed[e.EventID]; ok {
							lat = append(lat, now.Sub(t))
						}
						mu.Unlock()
					}
					if len(tb.Events) > 0 {
						poll = time.Millisecond
					}
					if mode == "listen" {
						wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond) // fallback poll
						_, _ = listener.WaitForNotification(wctx)
						wcancel()
						continue
					}
					sleep(ctx, poll)
					poll = min(2*poll, 50*time.Millisecond)
				}
			}()
			rng := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for range b.N {
				for range events {
					time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
					id := uuid.New()
					typ, sv, data := eventFor(id, 1)
					eventID := uuid.New()
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, insertSQL, id, 1, eventID, typ, sv, data); err != nil {
							return err
						}
						if mode == "listen" {
							_, err := tx.Exec(ctx, `SELECT pg_notify('events', '')`)
							return err
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
					mu.Lock()
					committed[eventID] = time.Now()
					mu.Unlock()
				}
			}
			time.Sleep(100 * time.Millisecond)
			cancel()
			<-readerDone
			mu.Lock()
			defer mu.Unlock()
			if len(lat) == 0 {
				b.Fatal("nothing read")
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// BenchmarkApply preloads a store (accounts x events per account, the
// deposits interleaved across accounts) and measures a Runner catching up.
func BenchmarkApply(b *testing.B) {
	const accounts, perAccount = 1000, 100
	for _, batch := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			eventsURL := pgtest.NewDatabase(b)
			readURL := pgtest.NewDatabase(b)
			events := benchPool(b, eventsURL, 4)
			if _, err := events.Exec(ctx, `
INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
SELECT a.id, 'BankAccount', v.v, gen_random_uuid(),
       CASE WHEN v.v = 1 THEN 'AccountOpened' ELSE 'MoneyDeposited' END, 2,
       CASE WHEN v.v = 1 THEN jsonb_build_object('account_id', a.id, 'owner_id', 'o', 'currency', 'USD', 'opened_at', now())
            ELSE '{"amount_minor":100,"currency":"USD","description":"d"}'::jsonb END
FROM generate_series(1, $2) AS v(v)
CROSS JOIN (SELECT gen_random_uuid() AS id FROM generate_series(1, $1)) AS a
ORDER BY v.v, a.id`, accounts, perAccount); err != nil {
				b.Fatal(err)
			}
			var total float64
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				read := benchPool(b, readURL, 4)
				if i > 0 {
					if _, err := read.Exec(ctx, `TRUNCATE account_balances, transaction_history, daily_summaries, projection_checkpoints`); err != nil {
						b.Fatal(err)
					}
				}
				r, err := NewRunner(store.NewTailer(events, domain.UpcastContext{DefaultCurrency: domain.MustCurrency("USD")}), read, Options{BatchSize: batch})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := r.CatchUp(ctx); err != nil {
					b.Fatal(err)
				}
				total += accounts * perAccount
			}
			b.ReportMetric(total/b.Elapsed().Seconds(), "events/s")
		})
	}
}
