package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evbank/bank/client"
)

// openAccount opens an account through the api and checks the answer.
func openAccount(t *testing.T, c *client.ClientWithResponses, owner, currency, initial string) client.AccountState {
	t.Helper()
	body := client.OpenAccountRequest{OwnerId: &owner}
	if currency != "" {
		body.Currency = &currency
	}
	if initial != "" {
		body.InitialDeposit = &initial
	}
	res, err := c.OpenAccountWithResponse(context.Background(), nil, body)
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON201 == nil {
		t.Fatalf("open account for %s: %d %s", owner, res.StatusCode(), res.Body)
	}
	a := *res.JSON201
	if res.Headers201 == nil || res.Headers201.Location != "/accounts/"+a.Id.String() || res.Headers201.ETag != fmt.Sprintf("%q", fmt.Sprint(a.Version)) {
		t.Errorf("open account: headers %+v for %+v", res.Headers201, a)
	}
	return a
}

// amounts a load generator moves, by currency: a deposit and a (smaller) withdrawal.
var loadAmounts = map[string][2]string{
	"USD": {"1.25", "0.50"},
	"EUR": {"2.00", "1.10"},
	"JPY": {"7", "3"},
	"KWD": {"0.125", "0.050"},
}

// loadAccounts opens n accounts in turn in the currencies of loadAmounts,
// each with an opening deposit that covers every withdrawal to come.
func loadAccounts(t *testing.T, c *client.ClientWithResponses, n int) []client.AccountState {
	t.Helper()
	currencies := []string{"USD", "JPY", "KWD", "EUR"}
	initial := map[string]string{"USD": "1000.00", "EUR": "1000.00", "JPY": "100000", "KWD": "1000.000"}
	out := make([]client.AccountState, n)
	for i := range out {
		cur := currencies[i%len(currencies)]
		out[i] = openAccount(t, c, fmt.Sprintf("load-%d", i), cur, initial[cur])
	}
	return out
}

// load is a running load generator: workers appending deposits (and every
// fourth operation a withdrawal) through the api to a few shared accounts,
// so that they also race each other on the same streams.
type load struct {
	cancel    context.CancelFunc // the hard stop, for a test that failed
	stopping  atomic.Bool        // the soft stop: no new commands
	wg        sync.WaitGroup
	ok        atomic.Int64
	conflicts atomic.Int64
	mu        sync.Mutex
	errs      []string
}

func startLoad(c *client.ClientWithResponses, accounts []client.AccountState, workers int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; !l.stopping.Load() && ctx.Err() == nil; i++ {
				l.one(ctx, c, accounts[(w+i)%len(accounts)], i%4 == 3)
			}
		}()
	}
	return l
}

func (l *load) one(ctx context.Context, c *client.ClientWithResponses, a client.AccountState, withdraw bool) {
	amounts := loadAmounts[a.Currency]
	desc := "load"
	var (
		status int
		body   []byte
		err    error
	)
	if withdraw {
		var res *client.WithdrawMoneyResponse
		res, err = c.WithdrawMoneyWithResponse(ctx, a.Id, nil, client.MoneyRequest{Amount: amounts[1], Description: &desc})
		if err == nil {
			status, body = res.StatusCode(), res.Body
		}
	} else {
		var res *client.DepositMoneyResponse
		res, err = c.DepositMoneyWithResponse(ctx, a.Id, nil, client.MoneyRequest{Amount: amounts[0], Description: &desc})
		if err == nil {
			status, body = res.StatusCode(), res.Body
		}
	}
	switch {
	case ctx.Err() != nil:
		// Stopped hard (the test failed); the request may or may not have been applied.
	case err != nil:
		l.fail(fmt.Sprintf("%s: %v", a.Id, err))
	case status == http.StatusOK:
		l.ok.Add(1)
	case status == http.StatusConflict:
		// concurrency_conflict: the retries ran out; nothing was appended.
		l.conflicts.Add(1)
	default:
		l.fail(fmt.Sprintf("%s: %d %s", a.Id, status, body))
	}
}

func (l *load) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, msg)
}

// waitFor waits until the generator has appended n more commands than when called.
func (l *load) waitFor(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	eventually(t, 30*time.Second, func() (bool, string) {
		return l.ok.Load() >= target, fmt.Sprintf("load at %d commands, waiting for %d", l.ok.Load(), target)
	})
}

// stop ends the load once the commands in flight are answered, so that
// nothing is appended after it returns, and fails the test on any answer
// other than 200 or 409 concurrency_conflict.
func (l *load) stop(t *testing.T) {
	t.Helper()
	l.stopping.Store(true)
	l.wg.Wait()
	l.cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.errs {
		if i == 10 {
			t.Errorf("... and %d more failed commands", len(l.errs)-10)
			break
		}
		t.Errorf("load: %s", e)
	}
	t.Logf("load: %d commands applied, %d gave up with 409 concurrency_conflict", l.ok.Load(), l.conflicts.Load())
}
