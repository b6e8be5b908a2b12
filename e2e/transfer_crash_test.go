package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/client"
	"github.com/evbank/bank/internal/pgtest"
)

// TestTransferCrashSafety SIGKILLs the api again and again while clients move
// money between a few accounts, and restarts it each time. Half the clients
// send a request that died with the api again, with the same Idempotency-Key,
// until they get an answer (the retry finishes the transfer it began); the
// others give up on it, leaving what the killed api began to the recovery
// loop. Afterwards: every acknowledged transfer is
// completed or returned within TRANSFER_RECOVERY_AFTER and a few seconds (the
// recovery loop finishes what a killed api left pending), no step exists
// twice, no balance was ever negative, money is conserved (balances plus
// pending equal deposits minus withdrawals) in the event store and in the
// read tables, and `projector verify` finds no drift.
func TestTransferCrashSafety(t *testing.T) {
	t.Parallel()
	const recoverAfter = time.Second
	s := newStack(t, false, fmt.Sprintf("TRANSFER_RECOVERY_AFTER=%s", recoverAfter))
	api := s.startAPI(t)
	s.startProjector(t, "projector")
	c := newClient(t, api.url, api.token)
	accounts := make([]uuid.UUID, 5)
	for i := range accounts {
		accounts[i] = openAccount(t, c, fmt.Sprintf("owner-%d", i), "USD", "50.00").Id
	}

	var base atomic.Value // the current api's URL: a restarted api listens elsewhere
	base.Store(api.url)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var (
		mu    sync.Mutex
		acked = map[uuid.UUID]bool{}
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				from, to := accounts[rng.IntN(len(accounts))], accounts[rng.IntN(len(accounts))]
				if from == to {
					continue
				}
				key := uuid.NewString()
				amount := fmt.Sprintf("%d.%02d", rng.IntN(8), 1+rng.IntN(99))
				for ctx.Err() == nil {
					cl, err := client.NewClientWithResponses(base.Load().(string), client.WithHTTPClient(httpClient), bearer(s.token))
					if err != nil {
						t.Error(err)
						return
					}
					res, err := cl.CreateTransferWithResponse(ctx, &client.CreateTransferParams{IdempotencyKey: &key},
						client.TransferRequest{FromAccountId: from, ToAccountId: to, Amount: amount})
					if err != nil || res.StatusCode() >= 500 {
						if w%2 == 1 {
							break // gives up: a transfer the api began is the recovery loop's
						}
						time.Sleep(20 * time.Millisecond) // the api is down or coming back: the same request again
						continue
					}
					switch {
					case res.JSON201 != nil:
						mu.Lock()
						acked[res.JSON201.Id] = true
						mu.Unlock()
					case res.StatusCode() != 422:
						t.Errorf("transfer: %d %s", res.StatusCode(), res.Body)
					}
					break
				}
			}
		})
	}

	apis := []*service{api}
	const kills = 4
	for i := 1; i <= kills; i++ {
		time.Sleep(time.Duration(300+rand.IntN(400)) * time.Millisecond)
		api.signal(t, syscall.SIGKILL)
		if code := api.wait(t, 10*time.Second); code != -1 {
			t.Fatalf("api after SIGKILL: exit code %d", code)
		}
		api = s.startAPI(t)
		apis = append(apis, api)
		base.Store(api.url)
	}
	// Let the last api take some load before the clients stop.
	mu.Lock()
	afterKills := len(acked)
	mu.Unlock()
	eventually(t, 30*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= afterKills+20, fmt.Sprintf("%d transfers acknowledged by the last api, want 20", len(acked)-afterKills)
	})
	stop()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n == 0 {
		t.Fatal("no transfer was acknowledged")
	}

	events := pgtest.NewPool(t, s.eventsURL)
	bg := context.Background()
	eventually(t, recoverAfter+15*time.Second, func() (bool, string) {
		var pending int
		if err := events.QueryRow(bg, `SELECT count(*) FROM transfer_sagas WHERE status = 'pending'`).Scan(&pending); err != nil {
			return false, err.Error()
		}
		return pending == 0, fmt.Sprintf("%d transfers still pending", pending)
	})
	for id := range acked {
		var status string
		if err := events.QueryRow(bg, `SELECT status FROM transfer_sagas WHERE transfer_id = $1`, id).Scan(&status); err != nil || status == "pending" {
			t.Errorf("acknowledged transfer %s: %q (%v)", id, status, err)
		}
	}
	checkTransferSteps(t, events)
	checkConservation(t, events)

	s.waitCaughtUp(t, 60*time.Second)
	s.checkReadModel(t)
	var readSum, wantSum int64
	if err := events.QueryRow(bg, `SELECT COALESCE(sum(balance_minor), 0) FROM account_balances`).Scan(&readSum); err != nil {
		t.Fatal(err)
	}
	if err := events.QueryRow(bg, `SELECT 50 * 100 * count(*) FROM account_balances`).Scan(&wantSum); err != nil {
		t.Fatal(err)
	}
	if readSum != wantSum {
		t.Errorf("read tables: balances sum to %d with nothing pending, want the %d deposited", readSum, wantSum)
	}
	s.verify(t)
	recovered := 0.0
	for _, a := range apis {
		for _, line := range strings.Split(a.out.String(), "\n") {
			if l := findLogLine(line, "api", "finished transfers left pending by a stopped api"); l != nil {
				recovered += l["finished"].(float64)
			}
		}
	}
	t.Logf("%d transfers acknowledged across %d kills of the api; the recovery loops finished %v left pending", n, kills, recovered)
}

// checkTransferSteps: each step of each transfer exists once, on the account
// it belongs to, and a transfer is completed or returned, never both.
func checkTransferSteps(t *testing.T, events *pgxpool.Pool) {
	t.Helper()
	rows, err := events.Query(context.Background(), `
SELECT data->>'transfer_id', count(*) FILTER (WHERE event_type = 'TransferSent'),
       count(*) FILTER (WHERE event_type = 'TransferReceived'), count(*) FILTER (WHERE event_type = 'TransferReturned')
FROM events WHERE event_type LIKE 'Transfer%' GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id                       string
			sent, received, returned int
		)
		if err := rows.Scan(&id, &sent, &received, &returned); err != nil {
			t.Fatal(err)
		}
		if sent != 1 || received+returned != 1 {
			t.Errorf("transfer %s: %d sent, %d received, %d returned; want one step 1 and one of steps 2 and 3", id, sent, received, returned)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// checkConservation folds every account's events in version order: no
// balance is ever negative, and the balances plus the pending transfers
// equal the deposits minus the withdrawals, from the event store alone.
func checkConservation(t *testing.T, events *pgxpool.Pool) {
	t.Helper()
	rows, err := events.Query(context.Background(), `
SELECT stream_id, version, event_type, COALESCE((data->>'amount_minor')::bigint, 0)
FROM events ORDER BY stream_id, version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var (
		balances             = map[uuid.UUID]int64{}
		sent, settled, total int64 // transfers out, transfers received or returned, deposits minus withdrawals
	)
	for rows.Next() {
		var (
			id      uuid.UUID
			version int
			typ     string
			amount  int64
		)
		if err := rows.Scan(&id, &version, &typ, &amount); err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "MoneyDeposited":
			balances[id] += amount
			total += amount
		case "MoneyWithdrawn":
			balances[id] -= amount
			total -= amount
		case "TransferSent":
			balances[id] -= amount
			sent += amount
		case "TransferReceived", "TransferReturned":
			balances[id] += amount
			settled += amount
		}
		if balances[id] < 0 {
			t.Errorf("account %s: balance %d after version %d", id, balances[id], version)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, b := range balances {
		sum += b
	}
	if pending := sent - settled; sum+pending != total {
		t.Errorf("balances %d + pending %d != deposits - withdrawals %d", sum, pending, total)
	}
}
