package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/evbank/bank/internal/httpapi"
	"github.com/evbank/bank/internal/query"
)

// TestQueryAccountTransfers runs transfers through POST /transfers and the
// real projector, then reads them back: the account's transfers in both
// directions, newest first across pages; its transfer steps in the
// transactions and in the day's summary; in_flight in /summary.
func TestQueryAccountTransfers(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t)
	alice := a.openAccount("alice", "", "100")
	bob := a.openAccount("bob", "", "")
	carol := a.openAccount("carol", "", "5")
	send := func(from, to, amount, desc string) string {
		t.Helper()
		r := a.do(http.MethodPost, "/transfers", map[string]any{"from_account_id": from, "to_account_id": to, "amount": amount, "description": desc})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("transfer: %d %s", r.StatusCode, r.Body)
		}
		return r.JSON(t)["id"].(string)
	}
	var sent []string // alice's, oldest first
	for i := range 3 {
		sent = append(sent, send(alice, bob, "10", "rent "+strconv.Itoa(i)))
	}
	sent = append(sent, send(bob, alice, "2.50", "change"))
	sent = append(sent, send(carol, alice, "1", "gift"))
	send(carol, bob, "1", "not alice's")
	dave := a.openAccount("dave", "", "")
	a.project()

	for _, limit := range []int{1, 2, 5, 50} {
		var got []query.Transfer
		path := "/accounts/" + alice + "/transfers?limit=" + strconv.Itoa(limit)
		for pages := 0; ; pages++ {
			if pages > len(sent)+1 {
				t.Fatal("pagination does not end")
			}
			var page struct {
				Items      []query.Transfer `json:"items"`
				NextCursor *string          `json:"next_cursor"`
			}
			a.get(path, &page)
			if len(page.Items) > limit {
				t.Fatalf("%d items, limit %d", len(page.Items), limit)
			}
			got = append(got, page.Items...)
			if page.NextCursor == nil {
				break
			}
			path = "/accounts/" + alice + "/transfers?limit=" + strconv.Itoa(limit) + "&cursor=" + url.QueryEscape(*page.NextCursor)
		}
		var ids []string
		for i, tr := range got {
			ids = append(ids, tr.ID.String())
			if tr.Status != "completed" || tr.CompletedAt == nil || tr.Reason != nil || tr.Currency != "USD" {
				t.Errorf("limit %d: transfer %s: %+v", limit, tr.ID, tr)
			}
			if i > 0 && got[i-1].CreatedAt.Before(tr.CreatedAt) {
				t.Errorf("limit %d: not newest first: %s then %s", limit, got[i-1].CreatedAt, tr.CreatedAt)
			}
		}
		want := []string{sent[4], sent[3], sent[2], sent[1], sent[0]}
		if d := cmp.Diff(want, ids); d != "" {
			t.Errorf("limit %d: alice's transfers, newest first (-want +got):\n%s", limit, d)
		}
		if limit == 50 {
			if g := got[1]; g.FromAccountID.String() != bob || g.ToAccountID.String() != alice || g.Amount != "2.50" || g.Description != "change" {
				t.Errorf("bob's transfer to alice: %+v", g)
			}
		}
	}
	if body := a.get("/accounts/"+dave+"/transfers", nil).Body; string(body) != `{"items":[],"next_cursor":null}` {
		t.Errorf("no transfers: %s", body)
	}

	// The steps in the transactions: the transfer and the other account.
	var txs httpapi.TransactionPage
	a.get("/accounts/"+alice+"/transactions", &txs)
	steps := map[string]int{}
	for _, tx := range txs.Items {
		steps[tx.Type]++
		switch tx.Type {
		case "transfer_out":
			if tx.TransferID == nil || tx.CounterpartyAccountID == nil || tx.CounterpartyAccountID.String() != bob || tx.Amount != "10.00" {
				t.Errorf("transfer_out: %+v", tx)
			}
		case "transfer_in":
			if tx.TransferID == nil || tx.CounterpartyAccountID == nil || (tx.CounterpartyAccountID.String() != bob && tx.CounterpartyAccountID.String() != carol) {
				t.Errorf("transfer_in: %+v", tx)
			}
		}
	}
	if steps["transfer_out"] != 3 || steps["transfer_in"] != 2 || txs.Items[0].BalanceAfter != "73.50" {
		t.Errorf("alice's transactions: %v, newest balance %s", steps, txs.Items[0].BalanceAfter)
	}
	var days httpapi.DailySummaries
	a.get("/accounts/"+alice+"/daily-summaries", &days)
	if len(days.Items) != 1 {
		t.Fatalf("days: %+v", days.Items)
	}
	if d := days.Items[0]; d.TransfersOutCount != 3 || d.TransfersOutTotal != "30.00" || d.TransfersInCount != 2 || d.TransfersInTotal != "3.50" || d.DepositsTotal != "100.00" {
		t.Errorf("alice's day: %+v", d)
	}

	// min_version waits as for the other queries of one account.
	var acct query.Account
	a.get("/accounts/"+alice, &acct)
	a.get("/accounts/"+alice+"/transfers?min_version="+strconv.Itoa(acct.Version), nil)
	wantProblem(t, a.do(http.MethodGet, "/accounts/"+alice+"/transfers?min_version="+strconv.Itoa(acct.Version+1), nil), http.StatusBadRequest, "validation_failed", "min_version")

	// in_flight: the pending transfers of the read table, per currency.
	if body := a.get("/summary", nil).Body; !jsonHas(string(body), `{"currency":"USD","total":"105.00","in_flight":"0.00"}`) {
		t.Errorf("summary without pending transfers: %s", body)
	}
	_, err := a.read.Exec(context.Background(), `INSERT INTO transfers (transfer_id, from_account_id, to_account_id, amount_minor, currency, description, status, created_at)
VALUES ($1, $2, $3, 1234, 'USD', '', 'pending', $4)`, uuid.New(), uuid.MustParse(alice), uuid.MustParse(bob), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if body := a.get("/summary", nil).Body; !jsonHas(string(body), `{"currency":"USD","total":"105.00","in_flight":"12.34"}`) {
		t.Errorf("summary with a pending transfer: %s", body)
	}

	wantProblem(t, a.do(http.MethodGet, "/accounts/"+uuid.NewString()+"/transfers", nil), http.StatusNotFound, "account_not_found", "")
	bad := []struct{ query, field string }{
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"cursor=***", "cursor"},
		{"cursor=" + encodeTestCursor("v:3"), "cursor"},
		{"cursor=" + encodeTestCursor("t:x:"+alice), "cursor"},
		{"cursor=" + encodeTestCursor("t:1:nope"), "cursor"},
		{"cursor=" + encodeTestCursor("t:1"), "cursor"},
		{"min_version=0", "min_version"},
	}
	for _, tt := range bad {
		wantProblem(t, a.do(http.MethodGet, "/accounts/"+alice+"/transfers?"+tt.query, nil), http.StatusBadRequest, "validation_failed", tt.field)
	}
	wantProblem(t, a.do(http.MethodGet, "/accounts/x/transfers", nil), http.StatusBadRequest, "validation_failed", "id")
}

// jsonHas says whether body contains part, as printed.
func jsonHas(body, part string) bool { return strings.Contains(body, part) }

// TestAccountTransfersWaitForTheTransfersProjection: with min_version, the
// transfers list waits for the transfers projection too, not only for
// account_balances: a transfers checkpoint behind (a projection catching up
// alone) is 503 projection_lagging, and an answer once it has caught up.
func TestAccountTransfersWaitForTheTransfersProjection(t *testing.T) {
	t.Parallel()
	a := newQueryAPI(t, withMinVersionWait(100*time.Millisecond))
	alice := a.openAccount("alice", "", "100")
	bob := a.openAccount("bob", "", "")
	if r := a.do(http.MethodPost, "/transfers", map[string]any{"from_account_id": alice, "to_account_id": bob, "amount": "1"}); r.StatusCode != http.StatusCreated {
		t.Fatalf("transfer: %d %s", r.StatusCode, r.Body)
	}
	a.project()
	ctx := context.Background()
	if _, err := a.read.Exec(ctx, `DELETE FROM transfers; UPDATE projection_checkpoints SET transaction_id = '0', global_position = 0 WHERE projection = 'transfers'`); err != nil {
		t.Fatal(err)
	}
	path := "/accounts/" + alice + "/transfers?min_version=3"
	wantProblem(t, a.do(http.MethodGet, path, nil), http.StatusServiceUnavailable, "projection_lagging", "")
	a.project() // the transfers projection catches up alone
	var page httpapi.TransferPage
	a.get(path, &page)
	if len(page.Items) != 1 {
		t.Errorf("after catching up: %+v", page.Items)
	}
}
