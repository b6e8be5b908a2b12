package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/client"
	"github.com/evbank/bank/internal/pgtest"
)

// TestHotAccountsAcrossKilledAPIs: two api processes take deposits and
// withdrawals on three hot accounts from many clients at once, so that each
// groups the commands queued on an account into one append while the other
// races it; one of them is SIGKILLed twice mid-load and restarted. Every
// client repeats its request with the same Idempotency-Key until it gets an
// answer. Afterwards each acknowledged command is in the event store exactly
// once (no other command is), no balance was ever negative, the balances
// are what the answers add up to, and the read tables agree (`projector
// verify`).
func TestHotAccountsAcrossKilledAPIs(t *testing.T) {
	t.Parallel()
	s := newStack(t, false)
	apis := [2]*service{s.startAPI(t), s.startAPI(t)}
	s.startProjector(t, "projector")
	c := newClient(t, apis[0].url, apis[0].token)
	accounts := make([]uuid.UUID, 3)
	for i := range accounts {
		accounts[i] = openAccount(t, c, fmt.Sprintf("hot-%d", i), "USD", "100.00").Id
	}

	var urls [2]atomic.Value // each api's current URL: a restarted one listens elsewhere
	urls[0].Store(apis[0].url)
	urls[1].Store(apis[1].url)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var (
		mu    sync.Mutex
		acked = map[string]int64{} // idempotency key -> the change it made, in minor units
		wg    sync.WaitGroup
	)
	for w := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for ctx.Err() == nil {
				id := accounts[rng.IntN(len(accounts))]
				key := uuid.NewString()
				deposit := rng.IntN(2) == 0
				// Once sent, a request is repeated until it is answered, even
				// after stop: its outcome must be known.
				for attempt := 0; ; attempt++ {
					if attempt == 1000 {
						t.Errorf("%s: no answer after %d attempts", key, attempt)
						return
					}
					cl, err := client.NewClientWithResponses(urls[w%2].Load().(string), client.WithHTTPClient(httpClient), bearer(s.token))
					if err != nil {
						t.Error(err)
						return
					}
					var (
						status int
						body   []byte
					)
					if deposit {
						res, err := cl.DepositMoneyWithResponse(context.Background(), id, &client.DepositMoneyParams{IdempotencyKey: &key}, client.MoneyRequest{Amount: "1.00"})
						if err == nil {
							status, body = res.StatusCode(), res.Body
						}
					} else {
						res, err := cl.WithdrawMoneyWithResponse(context.Background(), id, &client.WithdrawMoneyParams{IdempotencyKey: &key}, client.MoneyRequest{Amount: "2.50"})
						if err == nil {
							status, body = res.StatusCode(), res.Body
						}
					}
					switch {
					case status == 0 || status >= 500 || status == 409:
						// Down, coming back, or out of retries: the same request again.
						time.Sleep(10 * time.Millisecond)
						continue
					case status == 200:
						mu.Lock()
						acked[key] = map[bool]int64{true: 100, false: -250}[deposit]
						mu.Unlock()
					case status != 422:
						t.Errorf("%s: %d %s", key, status, body)
					}
					break
				}
			}
		})
	}

	acknowledged := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	const kills = 2
	for range kills {
		// Mid-load: after a random share of further answers, so that groups
		// are being appended when the api dies.
		from, more := acknowledged(), 100+rand.IntN(200)
		eventually(t, 30*time.Second, func() (bool, string) {
			n := acknowledged() - from
			return n >= more, fmt.Sprintf("%d commands acknowledged since the last kill, want %d", n, more)
		})
		apis[0].signal(t, syscall.SIGKILL)
		if code := apis[0].wait(t, 10*time.Second); code != -1 {
			t.Fatalf("api after SIGKILL: exit code %d", code)
		}
		apis[0] = s.startAPI(t)
		urls[0].Store(apis[0].url)
	}
	afterKills := acknowledged()
	eventually(t, 30*time.Second, func() (bool, string) {
		n := acknowledged() - afterKills
		return n >= 100, fmt.Sprintf("%d commands acknowledged since the last restart, want 100", n)
	})
	// Grouping shows in the metrics of the api that was never killed.
	m := metrics(t, apis[1].url)
	appends, grouped := sum(m, "bank_append_group_size_count"), sum(m, "bank_append_group_size_sum")
	stop()
	wg.Wait()

	events := pgtest.NewPool(t, s.eventsURL)
	bg := context.Background()
	rows, err := events.Query(bg, `
SELECT metadata->>'idempotency_key', count(*)
FROM events WHERE event_type IN ('MoneyDeposited', 'MoneyWithdrawn') AND version > 2
GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var (
			key *string
			n   int
		)
		if err := rows.Scan(&key, &n); err != nil {
			t.Fatal(err)
		}
		if key == nil {
			t.Errorf("%d events without the idempotency key their request carried", n)
			continue
		}
		stored[*key] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for key, n := range stored {
		if _, ok := acked[key]; !ok || n != 1 {
			t.Errorf("request %s: %d events, acknowledged %v; want one event for each acknowledged request, none for the others", key, n, ok)
		}
	}
	if len(stored) != len(acked) {
		t.Errorf("%d requests stored, %d acknowledged", len(stored), len(acked))
	}
	checkConservation(t, events)
	want := int64(len(accounts)) * 100_00
	for _, d := range acked {
		want += d
	}
	var got int64
	if err := events.QueryRow(bg, `
SELECT sum(CASE event_type WHEN 'MoneyWithdrawn' THEN -1 ELSE 1 END * (data->>'amount_minor')::bigint)
FROM events`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("the event store holds %d minor units, the answers add up to %d", got, want)
	}

	s.waitCaughtUp(t, 60*time.Second)
	s.checkReadModel(t)
	s.verify(t)
	if appends > 100 && grouped <= appends {
		t.Errorf("the api that stayed up made %.0f appends of %.0f commands: no group formed on three hot accounts", appends, grouped)
	}
	t.Logf("%d commands acknowledged across %d kills; the api that stayed up appended %.2f commands per statement", len(acked), kills, grouped/max(appends, 1))
}
