package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/evbank/bank/client"
)

func ptr[T any](v T) *T { return &v }

// state fails the test unless a command answered 200 with an account.
func state(t *testing.T, what string, status int, st *client.AccountState, body []byte) client.AccountState {
	t.Helper()
	if status != http.StatusOK || st == nil {
		t.Fatalf("%s: %d %s", what, status, body)
	}
	return *st
}

func deposit(t *testing.T, c *client.ClientWithResponses, id uuid.UUID, amount, desc string, params *client.DepositMoneyParams) client.AccountState {
	t.Helper()
	body := client.MoneyRequest{Amount: amount}
	if desc != "" {
		body.Description = &desc
	}
	res, err := c.DepositMoneyWithResponse(context.Background(), id, params, body)
	if err != nil {
		t.Fatal(err)
	}
	return state(t, "deposit "+amount, res.StatusCode(), res.JSON200, res.Body)
}

func withdraw(t *testing.T, c *client.ClientWithResponses, id uuid.UUID, amount string, params *client.WithdrawMoneyParams) client.AccountState {
	t.Helper()
	res, err := c.WithdrawMoneyWithResponse(context.Background(), id, params, client.MoneyRequest{Amount: amount})
	if err != nil {
		t.Fatal(err)
	}
	return state(t, "withdraw "+amount, res.StatusCode(), res.JSON200, res.Body)
}

func wantState(t *testing.T, got client.AccountState, balance string, status client.AccountStatus, version int32) {
	t.Helper()
	if got.Balance != balance || got.Status != status || got.Version != version {
		t.Errorf("account %s (%s): balance %s %s version %d; want %s %s version %d",
			got.Id, got.Currency, got.Balance, got.Status, got.Version, balance, status, version)
	}
}

// TestFullFlowSeparateReadDatabase drives every endpoint through the
// generated client against the real binaries, with the read tables in a
// database of their own that the binaries migrate themselves.
func TestFullFlowSeparateReadDatabase(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	proj := s.startProjector(t, "projector")
	api := s.startAPI(t)
	c := newClient(t, api.url, api.token)
	ctx := context.Background()

	// The api checks bearer tokens (AUTH_MODE=jwt over the stack's JWKS file).
	if code, body, err := get(api.url + "/accounts"); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("GET /accounts without a token: %d %s %v", code, body, err)
	}

	// Commands: the answers are the write side's state.
	usd := openAccount(t, c, "alice", "", "100.00") // DEFAULT_CURRENCY
	if usd.Currency != "USD" || usd.OwnerId != "alice" {
		t.Errorf("opened %+v; want alice's USD account", usd)
	}
	wantState(t, usd, "100.00", client.AccountStatusActive, 2)
	eur := openAccount(t, c, "alice", "EUR", "")
	wantState(t, eur, "0.00", client.AccountStatusActive, 1)
	jpy := openAccount(t, c, "bob", "JPY", "125")
	wantState(t, jpy, "125", client.AccountStatusActive, 2)
	kwd := openAccount(t, c, "bob", "KWD", "1.250")
	wantState(t, kwd, "1.250", client.AccountStatusActive, 2)
	// Enough of carol's to page through.
	var carols []uuid.UUID
	for range 11 {
		a := openAccount(t, c, "carol", "USD", "0")
		wantState(t, a, "0.00", client.AccountStatusActive, 1)
		carols = append(carols, a.Id)
	}

	const key, requestID, correlationID = "e2e-salary-1", "e2e-req-salary", "e2e-corr-1"
	depParams := &client.DepositMoneyParams{IdempotencyKey: ptr(key), XRequestID: ptr(requestID), XCorrelationID: ptr(correlationID)}
	st := deposit(t, c, usd.Id, "25.5", "salary", depParams)
	wantState(t, st, "125.50", client.AccountStatusActive, 3)
	// The retry replays the first answer and appends nothing.
	res, err := c.DepositMoneyWithResponse(ctx, usd.Id, depParams, client.MoneyRequest{Amount: "25.5", Description: ptr("salary")})
	if err != nil {
		t.Fatal(err)
	}
	replayed := state(t, "replayed deposit", res.StatusCode(), res.JSON200, res.Body)
	wantState(t, replayed, "125.50", client.AccountStatusActive, 3)
	if h := res.Headers200; h == nil || h.IdempotentReplayed == nil || *h.IdempotentReplayed != "true" || h.ETag != `"3"` {
		t.Errorf("replay headers %+v; want Idempotent-Replayed: true and ETag \"3\"", h)
	}
	st = withdraw(t, c, usd.Id, "10.00", &client.WithdrawMoneyParams{IfMatch: ptr(`"3"`)})
	wantState(t, st, "115.50", client.AccountStatusActive, 4)
	for i := 1; i <= 5; i++ {
		st = deposit(t, c, usd.Id, fmt.Sprintf("%d.00", i), "", nil)
	}
	wantState(t, st, "130.50", client.AccountStatusActive, 9)

	wres, err := c.WithdrawMoneyWithResponse(ctx, usd.Id, &client.WithdrawMoneyParams{IfMatch: ptr(`"3"`)}, client.MoneyRequest{Amount: "1.00"})
	if err != nil {
		t.Fatal(err)
	}
	if p := wres.ApplicationproblemJSON412; p == nil || p.Code != client.ProblemCodeVersionConflict {
		t.Errorf("stale If-Match: %d %s; want 412 version_conflict", wres.StatusCode(), wres.Body)
	}
	wres, err = c.WithdrawMoneyWithResponse(ctx, jpy.Id, nil, client.MoneyRequest{Amount: "126"})
	if err != nil {
		t.Fatal(err)
	}
	if p := wres.ApplicationproblemJSON422; p == nil || p.Code != client.ProblemCodeInsufficientFunds {
		t.Errorf("withdrawal above the balance: %d %s; want 422 insufficient_funds", wres.StatusCode(), wres.Body)
	}

	wantState(t, deposit(t, c, jpy.Id, "1000", "", nil), "1125", client.AccountStatusActive, 3)
	wantState(t, withdraw(t, c, jpy.Id, "125", nil), "1000", client.AccountStatusActive, 4)
	wantState(t, deposit(t, c, kwd.Id, "0.005", "fils", nil), "1.255", client.AccountStatusActive, 3)
	wantState(t, deposit(t, c, eur.Id, "10.00", "", nil), "10.00", client.AccountStatusActive, 2)
	wantState(t, withdraw(t, c, eur.Id, "10", nil), "0.00", client.AccountStatusActive, 3)
	cres, err := c.CloseAccountWithResponse(ctx, eur.Id, nil, client.CloseRequest{Reason: ptr("moving away")})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, state(t, "close", cres.StatusCode(), cres.JSON200, cres.Body), "0.00", client.AccountStatusClosed, 4)

	// Queries, read-your-writes: min_version answers with the new version at
	// once, without the client waiting.
	last := map[uuid.UUID]int32{usd.Id: 9, eur.Id: 4, jpy.Id: 4, kwd.Id: 3}
	want := map[uuid.UUID]struct {
		owner, currency, balance string
		status                   client.AccountStatus
	}{
		usd.Id: {"alice", "USD", "130.50", client.AccountStatusActive},
		eur.Id: {"alice", "EUR", "0.00", client.AccountStatusClosed},
		jpy.Id: {"bob", "JPY", "1000", client.AccountStatusActive},
		kwd.Id: {"bob", "KWD", "1.255", client.AccountStatusActive},
	}
	for id, v := range last {
		start := time.Now()
		res, err := c.GetAccountWithResponse(ctx, id, &client.GetAccountParams{MinVersion: ptr(int(v))})
		if err != nil {
			t.Fatal(err)
		}
		if res.JSON200 == nil {
			t.Fatalf("GET /accounts/%s?min_version=%d: %d %s", id, v, res.StatusCode(), res.Body)
		}
		a, w := res.JSON200, want[id]
		if a.Version != v || a.OwnerId != w.owner || a.Currency != w.currency || a.Balance != w.balance || a.Status != w.status {
			t.Errorf("GET /accounts/%s?min_version=%d = %+v; want version %d %+v", id, v, a, v, w)
		}
		if (a.Status == client.AccountStatusClosed) != (a.ClosedAt != nil) || a.UpdatedAt.Before(a.OpenedAt) {
			t.Errorf("account %s: opened %s updated %s closed %v", id, a.OpenedAt, a.UpdatedAt, a.ClosedAt)
		}
		t.Logf("min_version=%d of %s answered in %s", v, w.currency, time.Since(start).Round(time.Millisecond))
	}

	t.Run("accounts", func(t *testing.T) {
		for _, tc := range []struct {
			owner  string
			status client.AccountStatus
			want   []uuid.UUID
		}{
			{"", "", append([]uuid.UUID{usd.Id, eur.Id, jpy.Id, kwd.Id}, carols...)},
			{"alice", "", []uuid.UUID{usd.Id, eur.Id}},
			{"bob", "", []uuid.UUID{jpy.Id, kwd.Id}},
			{"carol", "", carols},
			{"carol", client.AccountStatusActive, carols},
			{"", client.AccountStatusClosed, []uuid.UUID{eur.Id}},
			{"alice", client.AccountStatusActive, []uuid.UUID{usd.Id}},
			{"dave", "", nil},
		} {
			for _, limit := range []int{1, 4, 200} {
				got := listAccounts(t, c, tc.owner, tc.status, limit)
				if !sameSet(got, tc.want) {
					t.Errorf("accounts owner=%q status=%q limit=%d: %v; want %v", tc.owner, tc.status, limit, got, tc.want)
				}
			}
		}
	})

	t.Run("transactions", func(t *testing.T) {
		// Newest first, each exactly once over pages of 3.
		var versions []int32
		var cursor *string
		pages := 0
		for {
			res, err := c.ListTransactionsWithResponse(ctx, usd.Id, &client.ListTransactionsParams{Limit: ptr(3), Cursor: cursor, MinVersion: ptr(9)})
			if err != nil {
				t.Fatal(err)
			}
			if res.JSON200 == nil {
				t.Fatalf("transactions: %d %s", res.StatusCode(), res.Body)
			}
			pages++
			for _, tx := range res.JSON200.Items {
				versions = append(versions, tx.Version)
				switch tx.Version {
				case 3:
					if tx.Type != client.TransactionTypeDeposit || tx.Amount != "25.50" || tx.Description != "salary" || tx.BalanceAfter != "125.50" {
						t.Errorf("transaction v3: %+v", tx)
					}
				case 4:
					if tx.Type != client.TransactionTypeWithdrawal || tx.Amount != "10.00" || tx.Description != "" || tx.BalanceAfter != "115.50" {
						t.Errorf("transaction v4: %+v", tx)
					}
				case 9:
					if tx.Amount != "5.00" || tx.BalanceAfter != "130.50" {
						t.Errorf("transaction v9: %+v", tx)
					}
				}
			}
			if cursor = res.JSON200.NextCursor; cursor == nil {
				break
			}
			if pages > 10 {
				t.Fatal("transactions: no last page")
			}
		}
		if want := []int32{9, 8, 7, 6, 5, 4, 3, 2}; !slices.Equal(versions, want) || pages != 3 {
			t.Errorf("transactions in %d pages: versions %v; want %v in 3 pages", pages, versions, want)
		}
		res, err := c.ListTransactionsWithResponse(ctx, uuid.New(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := res.ApplicationproblemJSON404; p == nil || p.Code != client.ProblemCodeAccountNotFound {
			t.Errorf("transactions of an unknown account: %d %s", res.StatusCode(), res.Body)
		}
	})

	t.Run("daily summaries", func(t *testing.T) {
		// A day is the UTC date of recorded_at; around midnight the events
		// may span two days.
		today := time.Now().UTC()
		res, err := c.ListDailySummariesWithResponse(ctx, usd.Id, &client.ListDailySummariesParams{
			From:       &openapi_types.Date{Time: today.AddDate(0, 0, -1)},
			To:         &openapi_types.Date{Time: today},
			MinVersion: ptr(9),
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.JSON200 == nil || len(res.JSON200.Items) == 0 {
			t.Fatalf("daily summaries: %d %s", res.StatusCode(), res.Body)
		}
		items := res.JSON200.Items
		var deposits, withdrawals int64
		for _, d := range items {
			deposits += d.DepositsCount
			withdrawals += d.WithdrawalsCount
		}
		if deposits != 7 || withdrawals != 1 || items[len(items)-1].ClosingBalance != "130.50" {
			t.Errorf("daily summaries: %+v; want 7 deposits, 1 withdrawal, closing at 130.50", items)
		}
		if len(items) == 1 && (items[0].DepositsTotal != "140.50" || items[0].WithdrawalsTotal != "10.00") {
			t.Errorf("daily summary: %+v; want deposits 140.50 and withdrawals 10.00", items[0])
		}
	})

	t.Run("summary", func(t *testing.T) {
		res, err := c.GetSummaryWithResponse(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.JSON200 == nil {
			t.Fatalf("summary: %d %s", res.StatusCode(), res.Body)
		}
		got := *res.JSON200
		want := client.Summary{
			Accounts: client.AccountCounts{Total: 15, Active: 14, Closed: 1},
			// Nothing in flight: no transfer yet (the transfers subtest comes later).
			Balances: []client.CurrencyTotal{{Currency: "EUR", Total: "0.00", InFlight: "0.00"}, {Currency: "JPY", Total: "1000", InFlight: "0"},
				{Currency: "KWD", Total: "1.255", InFlight: "0.000"}, {Currency: "USD", Total: "130.50", InFlight: "0.00"}},
		}
		if got.Accounts != want.Accounts || !slices.Equal(got.Balances, want.Balances) {
			t.Errorf("summary %+v; want %+v", got, want)
		}
	})

	t.Run("audit trail", func(t *testing.T) {
		var events []client.AuditEvent
		var cursor *string
		for range 10 {
			res, err := c.ListAccountEventsWithResponse(ctx, usd.Id, &client.ListAccountEventsParams{Limit: ptr(4), Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if res.JSON200 == nil {
				t.Fatalf("events: %d %s", res.StatusCode(), res.Body)
			}
			events = append(events, res.JSON200.Items...)
			if cursor = res.JSON200.NextCursor; cursor == nil {
				break
			}
		}
		var types []client.EventType
		for i, e := range events {
			types = append(types, e.Type)
			if e.Version != int32(i+1) || e.SchemaVersion != 2 || (i > 0 && e.Position <= events[i-1].Position) {
				t.Errorf("event %d: version %d schema %d position %d", i, e.Version, e.SchemaVersion, e.Position)
			}
		}
		want := []client.EventType{client.EventTypeAccountOpened, client.EventTypeMoneyDeposited, client.EventTypeMoneyDeposited, client.EventTypeMoneyWithdrawn}
		for range 5 {
			want = append(want, client.EventTypeMoneyDeposited)
		}
		if !slices.Equal(types, want) {
			t.Fatalf("audit trail %v; want %v", types, want)
		}
		salary := events[2]
		if salary.Data["amount_minor"] != float64(2550) || salary.Data["currency"] != "USD" || salary.Data["description"] != "salary" {
			t.Errorf("salary event data %v", salary.Data)
		}
		md := salary.Metadata
		if md.IdempotencyKey == nil || *md.IdempotencyKey != key || md.CausationId == nil || *md.CausationId != requestID ||
			md.CorrelationId == nil || *md.CorrelationId != correlationID {
			t.Errorf("salary event metadata %+v; want key %s, causation %s, correlation %s", md, key, requestID, correlationID)
		}

		// as_of answers from the event store: the state after the withdrawal.
		res, err := c.GetAccountWithResponse(ctx, usd.Id, &client.GetAccountParams{AsOf: ptr(events[3].RecordedAt)})
		if err != nil {
			t.Fatal(err)
		}
		if a := res.JSON200; a == nil || a.Version != 4 || a.Balance != "115.50" {
			t.Errorf("as_of the withdrawal: %d %s; want version 4 at 115.50", res.StatusCode(), res.Body)
		}
		res, err = c.GetAccountWithResponse(ctx, usd.Id, &client.GetAccountParams{AsOf: ptr(events[0].RecordedAt.Add(-time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		if p := res.ApplicationproblemJSON404; p == nil || p.Code != client.ProblemCodeAccountNotFound {
			t.Errorf("as_of before the opening: %d %s; want 404 account_not_found", res.StatusCode(), res.Body)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := metrics(t, api.url)
		if n := sum(m, "bank_commands_total"); n == 0 {
			t.Error("api: bank_commands_total has no non-zero series")
		}
		// 10 deposits of which one replayed, 4 withdrawals (2 refused), 15 opens, 1 close.
		if n := sum(m, "bank_commands_total", `command="deposit"`, `outcome="ok"`); n < 9 {
			t.Errorf(`api: bank_commands_total{command="deposit",outcome="ok"} = %v; want at least 9`, n)
		}
		// The projector applied all 31 events to each projection.
		pm := metrics(t, proj.url)
		for _, p := range []string{"account_balances", "transaction_history", "daily_summaries"} {
			if n := sum(pm, "projector_events_applied_total", `projection="`+p+`"`); n < 31 {
				t.Errorf("projector: projector_events_applied_total{projection=%q} = %v; want at least 31", p, n)
			}
		}
		if pm["projector_active"] != 1 {
			t.Errorf("projector_active = %v; want 1 on the only projector", pm["projector_active"])
		}
	})

	t.Run("transfers", func(t *testing.T) {
		// Two transfers between carol's accounts, read back from the
		// transfers table (min_version: the source's version after them);
		// checkReadModel and verify below compare every table with the
		// event store's transfer steps.
		from, to := carols[0], carols[1]
		st := deposit(t, c, from, "10.00", "", nil)
		var ids []uuid.UUID
		for _, amount := range []string{"4.00", "2.50"} {
			res, err := c.CreateTransferWithResponse(ctx, nil, client.TransferRequest{FromAccountId: from, ToAccountId: to, Amount: amount, Description: ptr("e2e")})
			if err != nil {
				t.Fatal(err)
			}
			if res.JSON201 == nil || res.JSON201.Status != client.TransferStatusCompleted {
				t.Fatalf("transfer: %d %s", res.StatusCode(), res.Body)
			}
			ids = append(ids, res.JSON201.Id)
		}
		for _, acct := range []uuid.UUID{from, to} {
			params := &client.ListAccountTransfersParams{Limit: ptr(1)}
			if acct == from {
				params.MinVersion = ptr(int(st.Version) + 2)
			}
			var got []uuid.UUID
			for {
				res, err := c.ListAccountTransfersWithResponse(ctx, acct, params)
				if err != nil {
					t.Fatal(err)
				}
				if res.JSON200 == nil {
					t.Fatalf("transfers of %s: %d %s", acct, res.StatusCode(), res.Body)
				}
				for _, tr := range res.JSON200.Items {
					got = append(got, tr.Id)
				}
				if res.JSON200.NextCursor == nil {
					break
				}
				params = &client.ListAccountTransfersParams{Limit: ptr(1), Cursor: res.JSON200.NextCursor}
			}
			if !slices.Equal(got, []uuid.UUID{ids[1], ids[0]}) {
				t.Errorf("transfers of %s: %v; want %v, newest first", acct, got, []uuid.UUID{ids[1], ids[0]})
			}
		}
	})

	s.waitCaughtUp(t, 30*time.Second)
	s.checkReadModel(t)
	s.verify(t)
	s.noProjectorErrors(t)
}

// listAccounts pages through GET /accounts and fails the test when an
// account comes twice.
func listAccounts(t *testing.T, c *client.ClientWithResponses, owner string, status client.AccountStatus, limit int) []uuid.UUID {
	t.Helper()
	params := &client.ListAccountsParams{Limit: &limit}
	if owner != "" {
		params.OwnerId = &owner
	}
	if status != "" {
		params.Status = &status
	}
	var out []uuid.UUID
	for range 100 {
		res, err := c.ListAccountsWithResponse(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		if res.JSON200 == nil {
			t.Fatalf("accounts: %d %s", res.StatusCode(), res.Body)
		}
		if len(res.JSON200.Items) > limit {
			t.Errorf("accounts limit=%d: a page of %d", limit, len(res.JSON200.Items))
		}
		for _, a := range res.JSON200.Items {
			if slices.Contains(out, a.Id) {
				t.Errorf("accounts limit=%d: %s twice", limit, a.Id)
			}
			if (owner != "" && a.OwnerId != owner) || (status != "" && a.Status != status) {
				t.Errorf("accounts owner=%q status=%q: got %+v", owner, status, a)
			}
			out = append(out, a.Id)
		}
		if params.Cursor = res.JSON200.NextCursor; params.Cursor == nil {
			return out
		}
	}
	t.Fatal("accounts: no last page after 100 pages")
	return nil
}

func sameSet(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
