package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evbank/bank/internal/natsserver/natstest"
	"github.com/evbank/bank/internal/pgtest"
)

// TestPublisherExactlyOnce runs the real binaries against a real broker:
// the projector is SIGKILLed at random moments while it publishes under
// load, then the broker is stopped for several seconds under load. The
// projections stay current through the outage, the projector stays ready
// and names the publisher's state, and at the end the stream holds every
// stored event exactly once, each account's events in version order.
func TestPublisherExactlyOnce(t *testing.T) {
	t.Parallel()
	b := natstest.Start(t)
	// Small publisher batches would need a setting; small projector batches
	// make the kills land inside batches, as in TestProjectorCrashSafety.
	s := newStack(t, false, "PROJECTOR_BATCH_SIZE=7", "NATS_URL="+b.URL())
	api := s.startAPI(t)
	c := newClient(t, api.url, api.token)
	accounts := loadAccounts(t, c, 6)

	proj := s.startProjector(t, "projector-1")
	l := startLoad(c, accounts, 4)
	defer l.cancel()
	const kills = 3
	for i := 1; i <= kills; i++ {
		published := waitPublishing(t, proj)
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		proj.signal(t, syscall.SIGKILL)
		if code := proj.wait(t, 10*time.Second); code != -1 {
			t.Fatalf("projector after SIGKILL: exit code %d", code)
		}
		t.Logf("kill %d: the projector had published %v events", i, published)
		proj = s.startProjector(t, fmt.Sprintf("projector-%d", i+1))
	}
	waitPublishing(t, proj)

	// The broker goes away for a while; the load goes on.
	b.Stop()
	outage := time.Now()
	before := l.ok.Load()
	l.waitFor(t, 20)
	eventually(t, 30*time.Second, func() (bool, string) {
		code, body, err := get(proj.url + "/readyz")
		return err == nil && code == 200 && strings.Contains(body, `"status":"broker unreachable"`), fmt.Sprintf("readyz %d %s %v", code, body, err)
	})
	// Projections current while the broker is down: every command the load
	// got an answer for is projected.
	l.stopping.Store(true)
	l.wg.Wait()
	s.waitCaughtUp(t, 30*time.Second)
	t.Logf("broker down %s: %d commands applied and projected meanwhile", time.Since(outage).Round(time.Millisecond), l.ok.Load()-before)
	lag1 := sum(metrics(t, proj.url), "projector_lag_seconds", `projection="publisher"`)
	if time.Since(outage) < 3*time.Second {
		time.Sleep(3*time.Second - time.Since(outage))
	}
	// Nothing is appended now, yet the publisher's lag keeps rising.
	lag2 := sum(metrics(t, proj.url), "projector_lag_seconds", `projection="publisher"`)
	if lag2 <= lag1 || lag2 < 2 {
		t.Errorf("publisher lag %.3fs then %.3fs after %s without a broker, want it rising", lag1, lag2, time.Since(outage).Round(time.Millisecond))
	}
	b.Restart()
	l.stop(t)

	events := pgtest.NewPool(t, s.eventsURL)
	var total int
	if err := events.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	js := connectJS(t, b.URL())
	eventually(t, 60*time.Second, func() (bool, string) {
		st, err := js.Stream(context.Background(), "BANK_EVENTS")
		if err != nil {
			return false, err.Error()
		}
		info, err := st.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return info.State.Msgs >= uint64(total), fmt.Sprintf("stream holds %d of %d events", info.State.Msgs, total)
	})
	time.Sleep(300 * time.Millisecond) // a duplicate would have landed by now
	checkStream(t, js, events)
	if code, body, _ := get(proj.url + "/readyz"); code != 200 || !strings.Contains(body, `"status":"publishing"`) {
		t.Errorf("projector /readyz after the outage: %d %s", code, body)
	}
	s.noProjectorErrors(t)
}

// waitPublishing waits until the projector is active and has published
// events, and returns how many.
func waitPublishing(t *testing.T, proj *service) float64 {
	t.Helper()
	var n float64
	eventually(t, 30*time.Second, func() (bool, string) {
		m, err := scrape(proj.url)
		if err != nil {
			return false, err.Error()
		}
		n = sum(m, "projector_events_applied_total", `projection="publisher"`)
		return m["projector_active"] == 1 && n > 0, fmt.Sprintf("%s: active %v, %v events published", proj.name, m["projector_active"], n)
	})
	return n
}

func connectJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
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

// checkStream requires the stream to hold each stored event exactly once,
// on its subject with its id, and each account's events in version order.
func checkStream(t *testing.T, js jetstream.JetStream, events *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	type stored struct {
		stream  uuid.UUID
		version int
		typ     string
	}
	want := map[uuid.UUID]stored{}
	rows, err := events.Query(ctx, `SELECT event_id, stream_id, version, event_type FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			id uuid.UUID
			e  stored
		)
		if err := rows.Scan(&id, &e.stream, &e.version, &e.typ); err != nil {
			t.Fatal(err)
		}
		want[id] = e
	}
	rows.Close()
	st, err := js.Stream(ctx, "BANK_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]bool{}
	last := map[uuid.UUID]int{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		var ce struct {
			ID            uuid.UUID `json:"id"`
			Subject       uuid.UUID `json:"subject"`
			StreamVersion int       `json:"streamversion"`
		}
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		e, ok := want[ce.ID]
		switch {
		case !ok:
			t.Fatalf("message %d: event %s is not in the store", seq, ce.ID)
		case seen[ce.ID]:
			t.Fatalf("message %d: event %s is in the stream twice", seq, ce.ID)
		case m.Header.Get("Nats-Msg-Id") != ce.ID.String():
			t.Fatalf("message %d: Nats-Msg-Id %q, want %s", seq, m.Header.Get("Nats-Msg-Id"), ce.ID)
		case m.Subject != "bank.account."+e.stream.String()+"."+e.typ || ce.Subject != e.stream || ce.StreamVersion != e.version:
			t.Fatalf("message %d: subject %s, CloudEvent subject %s version %d; stored %+v", seq, m.Subject, ce.Subject, ce.StreamVersion, e)
		case e.version != last[e.stream]+1:
			t.Fatalf("message %d: account %s version %d after version %d", seq, e.stream, e.version, last[e.stream])
		}
		seen[ce.ID] = true
		last[e.stream] = e.version
	}
	if len(seen) != len(want) {
		t.Fatalf("the stream holds %d of the %d stored events", len(seen), len(want))
	}
	t.Logf("the stream holds each of the %d stored events once, in version order per account", len(want))
}
