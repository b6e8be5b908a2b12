package publish_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/natsserver/natstest"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/projection"
	"github.com/evbank/bank/internal/publish"
	"github.com/evbank/bank/internal/store"
	"github.com/evbank/bank/internal/testwait"
)

var uc = domain.UpcastContext{DefaultCurrency: domain.FallbackCurrency}

// consumerJS connects a consumer-side client to the broker.
func consumerJS(t testing.TB, b *natstest.Broker) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(b.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// row is one stored event as the test wrote it.
type row struct {
	id       uuid.UUID
	stream   uuid.UUID
	version  int
	typ      string
	pos      int64
	at       time.Time
	metadata map[string]any
}

func storedEvents(t *testing.T, pool *pgxpool.Pool) map[uuid.UUID]row {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT event_id, stream_id, version, event_type, global_position, recorded_at, metadata FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.stream, &r.version, &r.typ, &r.pos, &r.at, &r.metadata); err != nil {
			t.Fatal(err)
		}
		out[r.id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// appendAccount writes one v2 account stream: opened, then deposits and
// withdrawals, each event its own transaction as the api appends them.
func appendAccount(t *testing.T, pool *pgxpool.Pool, id uuid.UUID, events int) {
	t.Helper()
	ctx := context.Background()
	md := func(v int) string {
		return fmt.Sprintf(`{"correlation_id":"corr-%s","causation_id":"req-%d","principal":"alice"}`, id, v)
	}
	ins := func(v int, typ, data string) {
		if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata)
VALUES ($1, 'BankAccount', $2, $3, $4, 2, $5, $6)`, id, v, uuid.New(), typ, data, md(v)); err != nil {
			t.Error(err)
		}
	}
	ins(1, "AccountOpened", fmt.Sprintf(`{"account_id":"%s","owner_id":"alice","currency":"EUR","opened_at":"2026-01-02T03:04:05Z"}`, id))
	for v := 2; v <= events; v++ {
		if v%3 == 0 {
			ins(v, "MoneyWithdrawn", `{"amount_minor":1,"currency":"EUR","description":"w"}`)
		} else {
			ins(v, "MoneyDeposited", `{"amount_minor":5,"currency":"EUR","description":"d"}`)
		}
	}
}

// appendLegacy writes a v1 account as the older service did, with metadata
// that has no correlation or causation id.
func appendLegacy(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2019, 3, 1, 9, 0, 0, 0, time.UTC)
	for i, ev := range []struct{ typ, data string }{
		{"AccountOpened", `{"accountId":"` + id.String() + `","ownerId":"legacy-owner","openedAt":"2019-03-01T09:00:00Z"}`},
		{"MoneyDeposited", `{"amount":125.5,"description":"salary","timestamp":"2019-03-02T09:00:00Z"}`},
		{"MoneyWithdrawn", `{"amount":25.25,"description":"rent","timestamp":"2019-03-03T09:00:00Z"}`},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata, recorded_at)
VALUES ($1, 'BankAccount', $2, $3, $4, 1, $5, '{}', $6)`, id, i+1, uuid.New(), ev.typ, ev.data, t0.Add(time.Duration(i)*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
}

// load appends accounts from several goroutines at once, so that
// transactions interleave and commit out of global-position order.
func load(t *testing.T, pool *pgxpool.Pool, accounts, events int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, accounts)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = uuid.New()
		wg.Add(1)
		go func() { defer wg.Done(); appendAccount(t, pool, ids[i], events) }()
	}
	wg.Wait()
	return ids
}

type harness struct {
	pool    *pgxpool.Pool
	metrics *projection.Metrics
	reg     *prometheus.Registry
	pub     *publish.Publisher
	stop    func()
}

func startPublisher(t *testing.T, pool *pgxpool.Pool, url string, opts publish.Options) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := projection.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	opts.URL, opts.Metrics, opts.Log = url, m, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 500 * time.Millisecond
	}
	if opts.AckTimeout == 0 {
		opts.AckTimeout = 2 * time.Second
	}
	p, err := publish.New(store.NewTailer(pool, uc), pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx, func() bool { return true }) }()
	h := &harness{pool: pool, metrics: m, reg: reg, pub: p}
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(h.stop)
	return h
}

// waitStream waits until the stream holds n messages.
func waitStream(t *testing.T, js jetstream.JetStream, name string, n uint64, within time.Duration) {
	t.Helper()
	testwait.Until(t, within, func() (bool, string) {
		s, err := js.Stream(context.Background(), name)
		if err != nil {
			return false, err.Error()
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return info.State.Msgs >= n, fmt.Sprintf("stream %s holds %d messages, want %d", name, info.State.Msgs, n)
	})
}

// streamMessages reads every message of the stream in sequence order.
func streamMessages(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// checkExactlyOnce checks that the stream holds each stored event exactly
// once, with its subject, headers and CloudEvent fields, and each account's
// events in version order.
func checkExactlyOnce(t *testing.T, pool *pgxpool.Pool, msgs []*jetstream.RawStreamMsg) {
	t.Helper()
	stored := storedEvents(t, pool)
	seen := map[uuid.UUID]bool{}
	lastVersion := map[uuid.UUID]int{}
	for _, m := range msgs {
		var ce map[string]any
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatalf("message %d: body is not JSON: %v", m.Sequence, err)
		}
		id := uuid.MustParse(ce["id"].(string))
		r, ok := stored[id]
		switch {
		case !ok:
			t.Fatalf("message %d: event %s is not in the store", m.Sequence, id)
		case seen[id]:
			t.Fatalf("message %d: event %s published twice", m.Sequence, id)
		}
		seen[id] = true
		if r.version != lastVersion[r.stream]+1 {
			t.Fatalf("message %d: account %s version %d after version %d", m.Sequence, r.stream, r.version, lastVersion[r.stream])
		}
		lastVersion[r.stream] = r.version
		if want := "bank.account." + r.stream.String() + "." + r.typ; m.Subject != want {
			t.Errorf("message %d: subject %s, want %s", m.Sequence, m.Subject, want)
		}
		if got := m.Header.Get("Nats-Msg-Id"); got != id.String() {
			t.Errorf("message %d: Nats-Msg-Id %q, want %s", m.Sequence, got, id)
		}
		if got := m.Header.Get("Content-Type"); got != "application/cloudevents+json" {
			t.Errorf("message %d: Content-Type %q", m.Sequence, got)
		}
		want := map[string]any{
			"specversion": "1.0", "id": id.String(), "source": "/bank", "type": "bank.account." + r.typ,
			"subject": r.stream.String(), "datacontenttype": "application/json",
			"sequence": fmt.Sprint(r.pos), "streamversion": float64(r.version),
		}
		if c, ok := r.metadata["correlation_id"]; ok {
			want["correlationid"] = c
		}
		if c, ok := r.metadata["causation_id"]; ok {
			want["causationid"] = c
		}
		for k, v := range want {
			if ce[k] != v {
				t.Errorf("message %d: %s = %#v, want %#v", m.Sequence, k, ce[k], v)
			}
		}
		for k := range ce {
			if _, ok := want[k]; !ok && k != "time" && k != "data" {
				t.Errorf("message %d: unexpected field %s", m.Sequence, k)
			}
		}
		if _, ok := r.metadata["correlation_id"]; !ok && ce["correlationid"] != nil {
			t.Errorf("message %d: correlationid present without one in the metadata", m.Sequence)
		}
		at, err := time.Parse(time.RFC3339Nano, ce["time"].(string))
		if err != nil || !at.Equal(r.at) {
			t.Errorf("message %d: time %v, want %s", m.Sequence, ce["time"], r.at)
		}
		if _, ok := ce["data"].(map[string]any); !ok {
			t.Errorf("message %d: data is not an object: %#v", m.Sequence, ce["data"])
		}
	}
	if len(seen) != len(stored) {
		t.Fatalf("stream holds %d of the %d stored events", len(seen), len(stored))
	}
}

func TestPublishesEveryEventExactlyOnceInTheCurrentShape(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	b := natstest.Start(t)
	legacy := uuid.New()
	appendLegacy(t, pool, legacy)
	load(t, pool, 20, 10)
	// A small window and batch make the publisher go round its loops.
	h := startPublisher(t, pool, b.URL(), publish.Options{Window: 7, BatchSize: 50})
	load(t, pool, 20, 10) // while it publishes
	js := consumerJS(t, b)
	waitStream(t, js, "BANK_EVENTS", 3+400, 30*time.Second)
	msgs := streamMessages(t, js, "BANK_EVENTS")
	checkExactlyOnce(t, pool, msgs)

	// The legacy events are in the current shape: minor units, the default currency.
	var legacyData []string
	for _, m := range msgs {
		if strings.Contains(m.Subject, legacy.String()) {
			var ce struct{ Data json.RawMessage }
			if err := json.Unmarshal(m.Data, &ce); err != nil {
				t.Fatal(err)
			}
			legacyData = append(legacyData, string(ce.Data))
		}
	}
	wantLegacy := []string{
		`{"account_id":"` + legacy.String() + `","owner_id":"legacy-owner","currency":"USD","opened_at":"2019-03-01T09:00:00Z"}`,
		`{"amount_minor":12550,"currency":"USD","description":"salary"}`,
		`{"amount_minor":2525,"currency":"USD","description":"rent"}`,
	}
	if len(legacyData) != 3 {
		t.Fatalf("legacy events in the stream: %d, want 3", len(legacyData))
	}
	for i := range wantLegacy {
		var got, want any
		_ = json.Unmarshal([]byte(legacyData[i]), &got)
		_ = json.Unmarshal([]byte(wantLegacy[i]), &want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("legacy event %d: data %s, want %s", i+1, legacyData[i], wantLegacy[i])
		}
	}

	// The stream as §8 fixes it.
	s, err := js.Stream(context.Background(), "BANK_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if len(cfg.Subjects) != 1 || cfg.Subjects[0] != "bank.>" || cfg.Storage != jetstream.FileStorage || cfg.Duplicates < 2*time.Minute {
		t.Errorf("stream config: subjects %v storage %v duplicates %s", cfg.Subjects, cfg.Storage, cfg.Duplicates)
	}

	// The checkpoint follows the acknowledgements, and the lag is zero once caught up.
	testwait.Until(t, 5*time.Second, func() (bool, string) {
		var pos int64
		if err := pool.QueryRow(context.Background(), `SELECT global_position FROM projection_checkpoints WHERE projection = 'publisher'`).Scan(&pos); err != nil {
			return false, err.Error()
		}
		lag := series(h.reg, "projector_lag_positions", publish.CheckpointName)
		return pos > 0 && lag == 0, fmt.Sprintf("publisher checkpoint at %d, lag %v positions", pos, lag)
	})
	if st := h.pub.State(); st.Status != publish.StatusPublishing || st.Published != 403 {
		t.Errorf("state %+v, want publishing with 403 published", st)
	}
}

func TestFilteredConsumerGetsDepositsOnly(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	b := natstest.Start(t)
	load(t, pool, 5, 9) // per account: 1 opened, 5 deposits, 3 withdrawals
	startPublisher(t, pool, b.URL(), publish.Options{})
	js := consumerJS(t, b)
	waitStream(t, js, "BANK_EVENTS", 45, 30*time.Second)
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, "BANK_EVENTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"bank.account.*.MoneyDeposited"}})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break // no more within a second: all delivered
		}
		var ce publish.CloudEvent
		if err := json.Unmarshal(m.Data(), &ce); err != nil {
			t.Fatal(err)
		}
		if ce.Type != "bank.account.MoneyDeposited" || !strings.HasSuffix(m.Subject(), ".MoneyDeposited") {
			t.Fatalf("filtered consumer got %s on %s", ce.Type, m.Subject())
		}
		got++
	}
	if got != 25 {
		t.Fatalf("filtered consumer got %d deposits, want 25", got)
	}
}

// TestResumesAfterTheStreamNotTheCheckpoint: the checkpoint is written after
// the acknowledgements, so a crash can leave it behind the stream. With a
// duplicate window too short to help, the publisher must still publish
// nothing twice: it resumes after the stream's last event.
func TestResumesAfterTheStreamNotTheCheckpoint(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	b := natstest.Start(t)
	js := consumerJS(t, b)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "BANK_EVENTS", Subjects: []string{"bank.>"}, Storage: jetstream.FileStorage, Duplicates: 100 * time.Millisecond,
	}); err != nil {
		t.Fatal(err)
	}
	load(t, pool, 10, 5)
	h := startPublisher(t, pool, b.URL(), publish.Options{})
	waitStream(t, js, "BANK_EVENTS", 50, 30*time.Second)
	h.stop()
	if _, err := pool.Exec(context.Background(), `UPDATE projection_checkpoints SET transaction_id = '0', global_position = 0 WHERE projection = 'publisher'`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past the duplicate window
	load(t, pool, 10, 5)
	startPublisher(t, pool, b.URL(), publish.Options{})
	waitStream(t, js, "BANK_EVENTS", 100, 30*time.Second)
	time.Sleep(200 * time.Millisecond) // a duplicate would land by now
	checkExactlyOnce(t, pool, streamMessages(t, js, "BANK_EVENTS"))
}

// TestBrokerOutage: with the broker down, the projections go on, the
// publisher says so and its lag rises; when the broker is back it catches up,
// exactly once.
func TestBrokerOutage(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	b := natstest.Start(t)
	load(t, pool, 5, 4)

	// The projections, with the publisher riding on their lock as in the projector.
	reg := prometheus.NewRegistry()
	m, err := projection.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	runner, err := projection.NewRunner(store.NewTailer(pool, uc), pool, projection.Options{Metrics: m, Log: log, StandbyRetry: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p, err := publish.New(store.NewTailer(pool, uc), pool, publish.Options{URL: b.URL(), Metrics: m, Log: log, MaxBackoff: 300 * time.Millisecond, AckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = runner.Run(ctx) }()
	go func() { defer wg.Done(); _ = p.Run(ctx, runner.Active) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	js := consumerJS(t, b)
	waitStream(t, js, "BANK_EVENTS", 20, 30*time.Second)

	b.Stop()
	// Load while the broker is down: the projections keep up.
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for {
			select {
			case <-stopLoad:
				return
			default:
			}
			appendAccount(t, pool, uuid.New(), 3)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	var lag1 float64
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if time.Until(deadline) < 2*time.Second && lag1 == 0 {
			lag1 = lagSeconds(reg, publish.CheckpointName)
		}
	}
	close(stopLoad)
	<-loadDone
	waitProjected(t, pool, runner, 5*time.Second)
	lag2 := lagSeconds(reg, publish.CheckpointName)
	if st := p.State(); st.Status != publish.StatusUnreachable {
		t.Errorf("publisher state while the broker is down: %+v", st)
	}
	if lag2 <= lag1 || lag2 < 1 {
		t.Errorf("publisher lag did not rise while the broker is down: %.3fs then %.3fs", lag1, lag2)
	}
	if pl := lagSeconds(reg, projection.Names()[0]); pl > 1 {
		t.Errorf("balances projection lags %.3fs while the broker is down", pl)
	}

	b.Restart()
	var total int64
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	waitStream(t, js, "BANK_EVENTS", uint64(total), 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	checkExactlyOnce(t, pool, streamMessages(t, js, "BANK_EVENTS"))
}

// waitProjected waits until every projection has applied every stored event.
func waitProjected(t *testing.T, pool *pgxpool.Pool, runner *projection.Runner, within time.Duration) {
	t.Helper()
	var last eventlog.Position
	if err := pool.QueryRow(context.Background(), `SELECT transaction_id, global_position FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1`).
		Scan(&last.TransactionID, &last.GlobalPosition); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, within, func() (bool, string) {
		for _, name := range projection.Names() {
			if cp := runner.Checkpoints()[name]; cp.Less(last) {
				return false, fmt.Sprintf("while the broker is down, projection %s at %s, want %s", name, cp, last)
			}
		}
		return true, ""
	})
}

func lagSeconds(reg *prometheus.Registry, name string) float64 {
	return series(reg, "projector_lag_seconds", name)
}

// series reads metric{projection=name} from reg (-1: absent).
func series(reg *prometheus.Registry, metric, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "projection" && l.GetValue() == name {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func TestRefusesAStreamThatDoesNotCoverThePrefix(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	b := natstest.Start(t)
	js := consumerJS(t, b)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "BANK_EVENTS", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	load(t, pool, 2, 3)
	h := startPublisher(t, pool, b.URL(), publish.Options{})
	testwait.Until(t, 10*time.Second, func() (bool, string) {
		st := h.pub.State()
		return st.Status == publish.StatusRefused, fmt.Sprintf("state %+v, want refused", st)
	})
	if d := h.pub.State().Detail; !strings.Contains(d, "other.>") || !strings.Contains(d, "bank.>") {
		t.Errorf("refusal does not say why: %q", d)
	}
	s, _ := js.Stream(context.Background(), "BANK_EVENTS")
	if info, _ := s.Info(context.Background()); info.State.Msgs != 0 {
		t.Errorf("refused stream holds %d messages", info.State.Msgs)
	}
}

// TestSaysWhenTheBrokerHasNoJetStream: a core NATS server without JetStream
// is named as such, not as an unreachable broker.
func TestSaysWhenTheBrokerHasNoJetStream(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t, pgtest.NewDatabase(t))
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	h := startPublisher(t, pool, s.ClientURL(), publish.Options{})
	testwait.Until(t, 15*time.Second, func() (bool, string) {
		st := h.pub.State()
		return strings.Contains(st.Detail, "no JetStream"), fmt.Sprintf("state %+v, want it to say the broker has no JetStream", st)
	})
}
