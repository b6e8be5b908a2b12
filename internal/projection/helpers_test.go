package projection

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
	"github.com/evbank/bank/internal/testwait"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is an event store and a read model in two separate databases.
type env struct {
	events *pgxpool.Pool
	read   *pgxpool.Pool
	tailer *store.Tailer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	eventsURL := pgtest.NewDatabase(t)
	readURL := pgtest.NewEmptyDatabase(t)
	if err := store.Migrate(readURL, store.ReadModelSchema); err != nil {
		t.Fatal(err)
	}
	cfg, err := store.ParseTailPoolConfig(eventsURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	events, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(events.Close)
	return &env{
		events: events,
		read:   pgtest.NewPool(t, readURL),
		tailer: store.NewTailer(events, domain.UpcastContext{DefaultCurrency: domain.MustCurrency("USD")}),
	}
}

func (e *env) runner(t *testing.T, opts Options) *Runner {
	t.Helper()
	opts.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	r, err := NewRunner(e.tailer, e.read, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// eventFor is the event a test appender writes at version v of stream id:
// opened, then deposits (some in the legacy v1 shape) and withdrawals.
func eventFor(id uuid.UUID, v int) (typ string, schemaVersion int, data string) {
	switch {
	case v == 1:
		return domain.TypeAccountOpened, 2, fmt.Sprintf(`{"account_id":%q,"owner_id":"owner-%s","currency":"USD","opened_at":"2024-05-06T07:08:09.123456789Z"}`, id, id.String()[:4])
	case v%6 == 0:
		return domain.TypeMoneyDeposited, 1, `{"amount":1.25,"description":"legacy","timestamp":"2019-01-01T00:00:00Z"}`
	case v%2 == 0:
		return domain.TypeMoneyDeposited, 2, fmt.Sprintf(`{"amount_minor":%d,"currency":"USD","description":"dep %d"}`, 100+v, v)
	case v%3 == 0:
		return domain.TypeMoneyWithdrawn, 2, `{"amount_minor":50,"currency":"USD","description":""}`
	default:
		return domain.TypeMoneyWithdrawn, 2, fmt.Sprintf(`{"amount_minor":%d,"currency":"USD","description":"wd"}`, v)
	}
}

const insertSQL = `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data)
VALUES ($1, 'BankAccount', $2, $3, $4, $5, $6) RETURNING global_position`

// appendOne appends the next event to stream the way the event store does:
// read the stream's version without a transaction, then insert version+1 in a
// short transaction, which takes its transaction id only then; retry when
// another writer took the version. hold keeps the transaction open after the
// insert, so that it commits after later ones.
func appendOne(ctx context.Context, pool *pgxpool.Pool, stream uuid.UUID, hold time.Duration) (version int, err error) {
	for {
		var v int
		if err := pool.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM events WHERE stream_id = $1`, stream).Scan(&v); err != nil {
			return 0, err
		}
		typ, sv, data := eventFor(stream, v+1)
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var pos int64
			if err := tx.QueryRow(ctx, insertSQL, stream, v+1, uuid.New(), typ, sv, data).Scan(&pos); err != nil {
				return err
			}
			if hold > 0 {
				time.Sleep(hold)
			}
			return nil
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			continue
		}
		return v + 1, err
	}
}

// appendN appends n events to stream.
func appendN(t *testing.T, pool *pgxpool.Pool, stream uuid.UUID, n int) {
	t.Helper()
	for range n {
		if _, err := appendOne(context.Background(), pool, stream, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// insertAt stores one event with explicit fields, for forged histories.
func insertAt(t *testing.T, pool *pgxpool.Pool, stream uuid.UUID, version int, typ string, data string, at time.Time) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, recorded_at)
VALUES ($1, 'BankAccount', $2, $3, $4, 2, $5, $6)`, stream, version, uuid.New(), typ, data, at)
	if err != nil {
		t.Fatalf("insert %s v%d: %v", typ, version, err)
	}
}

// lastPosition is the last event in the gap-safe order.
func lastPosition(t *testing.T, pool *pgxpool.Pool) eventlog.Position {
	t.Helper()
	var p eventlog.Position
	err := pool.QueryRow(context.Background(), `SELECT transaction_id, global_position FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1`).
		Scan(&p.TransactionID, &p.GlobalPosition)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return p
}

// waitCaughtUp waits until r has applied every event in the store.
func waitCaughtUp(t *testing.T, e *env, r *Runner) {
	t.Helper()
	want := lastPosition(t, e.events)
	testwait.Until(t, 20*time.Second, func() (bool, string) {
		cps := r.Checkpoints()
		done := len(cps) > 0
		for _, cp := range cps {
			done = done && cp == want
		}
		return done, fmt.Sprintf("runner did not catch up with %s: checkpoints %v", want, cps)
	})
}

// assertTablesMatchReplay compares the read tables with a fold of every event.
func assertTablesMatchReplay(t *testing.T, e *env) Tables {
	t.Helper()
	ctx := context.Background()
	want, _, err := Replay(ctx, e.tailer, lastPosition(t, e.events))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadTables(ctx, e.read)
	if err != nil {
		t.Fatal(err)
	}
	if ds := Compare(want, got); len(ds) > 0 {
		for i, d := range ds {
			if i == 20 {
				t.Errorf("... and %d more", len(ds)-i)
				break
			}
			t.Errorf("drift: %s", d)
		}
		t.FailNow()
	}
	return got
}

// versionWatch records the versions each stream's committed batches carried.
type versionWatch struct {
	mu   sync.Mutex
	last map[uuid.UUID]int
	errs []string
}

func watchVersions(r *Runner) *versionWatch {
	w := &versionWatch{last: map[uuid.UUID]int{}}
	r.afterApply = func(events []eventlog.RecordedEvent) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, e := range events {
			if e.Version != w.last[e.StreamID]+1 {
				w.errs = append(w.errs, fmt.Sprintf("stream %s: version %d after %d", e.StreamID, e.Version, w.last[e.StreamID]))
			}
			w.last[e.StreamID] = e.Version
		}
	}
	return w
}

func gaugeValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	t.Fatalf("not a gauge or counter: %v", &m)
	return 0
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
