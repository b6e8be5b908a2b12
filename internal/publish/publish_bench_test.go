package publish_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/natsserver/natstest"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/projection"
	"github.com/evbank/bank/internal/publish"
	"github.com/evbank/bank/internal/store"
)

// envInt reads a size from the environment, for `make bench-publish`.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// insertBacklog writes accounts×perAccount v2 events (an opening, then
// deposits), 1000 events per transaction, with SQL alone: the backlog of a
// publisher that was away.
func insertBacklog(b *testing.B, pool *pgxpool.Pool, accounts, perAccount int) {
	b.Helper()
	ctx := context.Background()
	chunk := max(1, 1000/perAccount)
	for first := 0; first < accounts; first += chunk {
		n := min(chunk, accounts-first)
		if _, err := pool.Exec(ctx, `
INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata)
SELECT a.id, 'BankAccount', v, gen_random_uuid(),
       CASE WHEN v = 1 THEN 'AccountOpened' ELSE 'MoneyDeposited' END, 2,
       CASE WHEN v = 1 THEN jsonb_build_object('account_id', a.id, 'owner_id', 'bench', 'currency', 'USD', 'opened_at', '2026-01-01T00:00:00Z')
            ELSE jsonb_build_object('amount_minor', 100 + v, 'currency', 'USD', 'description', 'bench') END,
       jsonb_build_object('correlation_id', 'c-' || v, 'causation_id', 'r-' || v, 'principal', 'bench')
FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, $1)) a, generate_series(1, $2) v
ORDER BY a.id, v`, n, perAccount); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishBacklog publishes a backlog (BENCH_BACKLOG events, 200,000
// by default) to an embedded JetStream server on the same machine, and folds
// the same backlog into the projections with the projector's runner, for the
// two catch-up rates side by side. Run it once: `make bench-publish`.
func BenchmarkPublishBacklog(b *testing.B) {
	total := envInt("BENCH_BACKLOG", 200_000)
	const perAccount = 20
	pool := pgtest.NewPool(b, pgtest.NewDatabase(b))
	insertBacklog(b, pool, total/perAccount, perAccount)
	total = total / perAccount * perAccount
	br := natstest.Start(b)
	js := consumerJS(b, br)
	b.ResetTimer()
	for range b.N {
		// The projector's own catch-up over the same events.
		runner, err := projection.NewRunner(store.NewTailer(pool, uc), pool, projection.Options{Log: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := runner.CatchUp(context.Background()); err != nil {
			b.Fatal(err)
		}
		projRate := float64(total) / time.Since(start).Seconds()

		m, _ := projection.NewMetrics(nil)
		p, err := publish.New(store.NewTailer(pool, uc), pool, publish.Options{URL: br.URL(), Metrics: m, Log: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		start = time.Now()
		go func() { defer close(done); _ = p.Run(ctx, func() bool { return true }) }()
		for p.State().Published < uint64(total) {
			time.Sleep(5 * time.Millisecond)
		}
		pubRate := float64(total) / time.Since(start).Seconds()
		cancel()
		<-done
		b.ReportMetric(pubRate, "published_events/s")
		b.ReportMetric(projRate, "projected_events/s")
		b.ReportMetric(float64(total), "events")
		b.Logf("backlog of %d events: published at %.0f events/s, projected into every read table (projection.All) at %.0f events/s", total, pubRate, projRate)
		// Once is the measurement; reset for another round.
		if _, err := pool.Exec(context.Background(), `DELETE FROM projection_checkpoints`); err != nil {
			b.Fatal(err)
		}
		if err := js.DeleteStream(context.Background(), "BANK_EVENTS"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublisherLag appends deposits at BENCH_RATE per second (2,600 by
// default: half the api's deposit rate in the README's latest run) for
// BENCH_SECONDS (10), each its own transaction as the api appends them, and measures from each commit to the message's delivery by
// a consumer of the stream (so: stored in the stream); p50 and p99.
func BenchmarkPublisherLag(b *testing.B) {
	rate := envInt("BENCH_RATE", 2600)
	secs := envInt("BENCH_SECONDS", 10)
	pool := pgtest.NewPool(b, pgtest.NewDatabase(b))
	br := natstest.Start(b)
	js := consumerJS(b, br)
	m, _ := projection.NewMetrics(nil)
	p, err := publish.New(store.NewTailer(pool, uc), pool, publish.Options{URL: br.URL(), Metrics: m, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = p.Run(ctx, func() bool { return true }) }()

	accounts := make([]uuid.UUID, 100)
	for i := range accounts {
		accounts[i] = uuid.New()
		if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata)
VALUES ($1, 'BankAccount', 1, gen_random_uuid(), 'AccountOpened', 2, jsonb_build_object('account_id', $1::uuid, 'owner_id', 'bench', 'currency', 'USD', 'opened_at', '2026-01-01T00:00:00Z'), '{}')`, accounts[i]); err != nil {
			b.Fatal(err)
		}
	}
	var (
		mu        sync.Mutex
		committed = map[uuid.UUID]time.Time{}
		lags      []time.Duration
	)
	// Wait for the openings, then deliver only what follows.
	for p.State().Published < uint64(len(accounts)) {
		time.Sleep(5 * time.Millisecond)
	}
	cons, err := js.OrderedConsumer(ctx, "BANK_EVENTS", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"bank.account.*.MoneyDeposited"}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		now := time.Now()
		id, err := uuid.Parse(msg.Headers().Get("Nats-Msg-Id"))
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if at, ok := committed[id]; ok {
			lags = append(lags, now.Sub(at))
		} else {
			committed[id] = now // delivered before the committer noted it: lag ~0
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()

	b.ResetTimer()
	versions := make([]int, len(accounts))
	for i := range versions {
		versions[i] = 1
	}
	// Several appenders, each with its own accounts, paced to the rate.
	const workers = 8
	n := rate * secs
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
				a := (i/workers%(len(accounts)/workers))*workers + w
				versions[a]++
				id := uuid.New()
				if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata)
VALUES ($1, 'BankAccount', $2, $3, 'MoneyDeposited', 2, '{"amount_minor":100,"currency":"USD","description":"lag"}', '{}')`, accounts[a], versions[a], id); err != nil {
					b.Error(err)
					return
				}
				now := time.Now()
				mu.Lock()
				if at, ok := committed[id]; ok {
					lags = append(lags, max(0, at.Sub(now)))
				} else {
					committed[id] = now
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := len(lags)
		mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lags) < n {
		b.Fatalf("%d of %d deposits delivered", len(lags), n)
	}
	slices.Sort(lags)
	pct := func(q float64) time.Duration { return lags[min(len(lags)-1, int(q*float64(len(lags))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(rate), "deposits/s")
	b.Logf("%d deposits at %d/s: commit to delivery from the stream p50 %s, p99 %s, max %s", n, rate, pct(0.50), pct(0.99), lags[len(lags)-1])
}
