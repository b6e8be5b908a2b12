package projection

// BenchmarkRebuild measures `projector rebuild` of every projection
// over a store of REBUILD_BENCH_EVENTS events (100,000 by default), and, in
// the same run and on the same server, COPY of the same transaction_history
// rows: into a table without indexes (the write-speed ceiling the rebuild is
// compared with), into one with the table's indexes in place, and without
// indexes followed by building them. Run it once, against a durable server
// for figures worth quoting:
//
//	TEST_DATABASE_URL=postgres://... REBUILD_BENCH_EVENTS=1000000 \
//	    go test -run '^$' -bench Rebuild -benchtime 1x -timeout 30m ./internal/projection/
//
// REBUILD_BENCH_CHUNK sets RebuildOptions.ChunkSize (10000).
//
// Figures, 1,000,000 events (20,000 accounts x 50 events over 10 days: 980,000
// transaction_history rows, 200,000 daily_summaries rows), shared 2-vCPU
// machine, PostgreSQL 15, fsync and synchronous_commit on; two runs while the
// machine was quiet, one while other work kept it busy:
//
//	                                  quiet 1    quiet 2       busy
//	rebuild, indexes built after      150,719    145,439     81,589 events/s
//	rebuild, indexes in place         107,956    110,945          - events/s
//	COPY, no indexes                  972,611  1,281,550  1,239,889 rows/s
//	COPY, indexes in place            131,227    155,851    154,824 rows/s
//	COPY, then build the indexes      444,113    645,109    644,200 rows/s
//	rebuild / COPY without indexes      0.155      0.113      0.066
//	rebuild / COPY then index           0.34       0.23       0.13
//
// Quiet 2 in phases: load 4.8 s, write 0.3 s, index 1.7 s, swap 8 ms (the
// live tables locked 3 ms). The load is bound by decoding the events (JSON,
// upcasting) in store.Tailer.Read: two readers side by side took it from
// 7.0 s to 4.6 s.
// Chunks of 2,000 events were 10-20 % slower than 10,000; 50,000 no faster.

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/readmodel"
	"github.com/evbank/bank/internal/store"
)

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func BenchmarkRebuild(b *testing.B) {
	const perAccount, days = 50, 10
	events := envInt(b, "REBUILD_BENCH_EVENTS", 100_000)
	chunk := envInt(b, "REBUILD_BENCH_CHUNK", 10_000)
	accounts := max(1, events/perAccount)
	ctx := context.Background()

	eventsPool := benchPool(b, pgtest.NewDatabase(b), 8)
	readURL := pgtest.NewEmptyDatabase(b)
	if err := store.Migrate(readURL, store.ReadModelSchema); err != nil {
		b.Fatal(err)
	}
	read := benchPool(b, readURL, 8)
	start := time.Now()
	seedEvents(b, eventsPool, accounts, perAccount, days)
	b.Logf("seeded %d events in %v", accounts*perAccount, time.Since(start))
	if _, err := eventsPool.Exec(ctx, `VACUUM (ANALYZE) events`); err != nil {
		b.Fatal(err)
	}

	for _, mode := range []struct {
		name         string
		indexesFirst bool
	}{{"indexes=after", false}, {"indexes=during", true}} {
		b.Run(mode.name, func(b *testing.B) {
			var folded int64
			b.ResetTimer()
			for range b.N {
				res, err := Rebuild(ctx, eventsPool, read, RebuildOptions{
					ChunkSize:    chunk,
					indexesFirst: mode.indexesFirst,
					Log:          zerolog.New(zerolog.NewTestWriter(b)).Level(zerolog.WarnLevel),
				})
				if err != nil {
					b.Fatal(err)
				}
				folded += res.Folded
				b.Logf("%s: %v, phases %v, tables locked %v", mode.name, res.Duration, res.Phases, res.Locked)
			}
			b.StopTimer()
			rate := float64(folded) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "events/s")

			if mode.indexesFirst {
				return
			}
			// COPY of the same rows, timed alone: the rows are read back first.
			var rows []readmodel.Transaction
			r, err := read.Query(ctx, `SELECT `+readmodel.TransactionHistory.ColumnList()+` FROM transaction_history`)
			if err != nil {
				b.Fatal(err)
			}
			var t readmodel.Transaction
			if _, err := pgx.ForEachRow(r, []any{&t.EventID, &t.AccountID, &t.Type, &t.AmountMinor, &t.Currency, &t.Description, &t.BalanceAfterMinor, &t.Version, &t.OccurredAt, &t.TransferID, &t.CounterpartyAccountID}, func() error {
				rows = append(rows, t)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			copyRate := func(like string, indexAfter bool) float64 {
				if _, err := read.Exec(ctx, `DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE transaction_history `+like+`)`); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				hr := historyRows(rows)
				src := &rowSource{to: hr.N, vals: make([]any, len(hr.Table.Columns)), fill: hr.Fill}
				if _, err := read.CopyFrom(ctx, pgx.Identifier{"bench_copy"}, hr.Table.Columns, src); err != nil {
					b.Fatal(err)
				}
				if indexAfter {
					if _, err := read.Exec(ctx, `ALTER TABLE bench_copy ADD PRIMARY KEY (event_id), ADD UNIQUE (account_id, version)`); err != nil {
						b.Fatal(err)
					}
				}
				d := time.Since(start)
				if _, err := read.Exec(ctx, `DROP TABLE bench_copy`); err != nil {
					b.Fatal(err)
				}
				return float64(len(rows)) / d.Seconds()
			}
			bare := copyRate("INCLUDING DEFAULTS", false)
			indexed := copyRate("INCLUDING ALL", false)
			thenIndexed := copyRate("INCLUDING DEFAULTS", true)
			b.ReportMetric(bare, "copy-rows/s")
			b.ReportMetric(indexed, "copy-indexed-rows/s")
			b.ReportMetric(thenIndexed, "copy-then-index-rows/s")
			b.ReportMetric(rate/bare, "rebuild/copy")
			b.ReportMetric(rate/thenIndexed, "rebuild/copy-then-index")
			b.Logf("%d history rows: COPY %.0f rows/s unindexed, %.0f with indexes, %.0f indexed after; rebuild %.0f events/s = %.2f of unindexed COPY, %.2f of COPY then index",
				len(rows), bare, indexed, thenIndexed, rate, rate/bare, rate/thenIndexed)
		})
	}
}
