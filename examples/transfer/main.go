// Command transfer shows the bank API's Go client,
// github.com/evbank/bank/client, from start to end: it opens two accounts,
// deposits into the first, moves part of it to the second and prints both
// audit trails.
//
//	make run                                   # in one terminal: the api on :8080
//	BANK_URL=http://localhost:8080 BANK_TOKEN=$(make -s token) go run ./examples/transfer
//
// BANK_URL defaults to http://localhost:8080. BANK_TOKEN needs the
// bank:read and bank:write scopes; both accounts belong to its subject.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/client"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := run(ctx, os.Stdout, os.Getenv("BANK_URL"), os.Getenv("BANK_TOKEN"))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "transfer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, baseURL, token string) error {
	if baseURL == "" {
		baseURL = "http://localhost:8080"
	}
	if token == "" {
		return errors.New("BANK_TOKEN is empty: `make token` prints one for the api of `make run`")
	}
	c, err := client.NewClientWithResponses(baseURL,
		client.WithHTTPClient(&http.Client{Timeout: 15 * time.Second}),
		client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
	if err != nil {
		return err
	}

	// Each write carries an Idempotency-Key, so that a retry after a lost
	// answer applies it once.
	key := func() *client.IdempotencyKey { k := uuid.NewString(); return &k }

	open := func(initial string) (client.AccountState, error) {
		body := client.OpenAccountRequest{}
		if initial != "" {
			body.InitialDeposit = &initial
		}
		res, err := c.OpenAccountWithResponse(ctx, &client.OpenAccountParams{IdempotencyKey: key()}, body)
		if err != nil {
			return client.AccountState{}, err
		}
		if res.JSON201 == nil {
			return client.AccountState{}, problem("open an account", res.StatusCode(), res.Body)
		}
		return *res.JSON201, nil
	}
	alice, err := open("")
	if err != nil {
		return err
	}
	bob, err := open("")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "opened %s and %s (%s)\n", alice.Id, bob.Id, alice.Currency)

	dep, err := c.DepositMoneyWithResponse(ctx, alice.Id, &client.DepositMoneyParams{IdempotencyKey: key()},
		client.MoneyRequest{Amount: "100.00", Description: ptr("salary")})
	if err != nil {
		return err
	}
	if dep.JSON200 == nil {
		return problem("deposit", dep.StatusCode(), dep.Body)
	}
	fmt.Fprintf(w, "deposited 100.00 into %s: balance %s\n", alice.Id, dep.JSON200.Balance)

	tr, err := c.CreateTransferWithResponse(ctx, &client.CreateTransferParams{IdempotencyKey: key()},
		client.TransferRequest{FromAccountId: alice.Id, ToAccountId: bob.Id, Amount: "30.00", Description: ptr("rent")})
	if err != nil {
		return err
	}
	if tr.JSON201 == nil {
		return problem("transfer", tr.StatusCode(), tr.Body)
	}
	fmt.Fprintf(w, "transfer %s of %s %s: %s\n", tr.JSON201.Id, tr.JSON201.Amount, tr.JSON201.Currency, tr.JSON201.Status)

	// The audit trail comes from the event store itself: no waiting for
	// the read side.
	for _, a := range []client.AccountState{alice, bob} {
		res, err := c.ListAccountEventsWithResponse(ctx, a.Id, &client.ListAccountEventsParams{})
		if err != nil {
			return err
		}
		if res.JSON200 == nil {
			return problem("audit trail", res.StatusCode(), res.Body)
		}
		fmt.Fprintf(w, "\naudit trail of %s:\n", a.Id)
		for _, e := range res.JSON200.Items {
			data, err := json.Marshal(e.Data)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  v%-3d %-20s %s %s\n", e.Version, e.Type, e.RecordedAt.Format(time.RFC3339), data)
		}
	}
	return nil
}

// problem describes a refused request by its RFC 9457 body.
func problem(what string, status int, body []byte) error {
	var p struct {
		Code, Detail string
		Errors       []struct{ Field, Message string }
	}
	if json.Unmarshal(body, &p) == nil && p.Code != "" {
		msg := fmt.Sprintf("%s: %d %s: %s", what, status, p.Code, p.Detail)
		for _, e := range p.Errors {
			msg += fmt.Sprintf("; %s %s", e.Field, e.Message)
		}
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %d %.200s", what, status, body)
}

func ptr[T any](v T) *T { return &v }
