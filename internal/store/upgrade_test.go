package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/store"
)

// TestKeptResponsesSurviveTheUpgradeToOpaqueAnswers: an idempotency record
// kept as status, headers and body (schema 3) is, after migration 4, the
// transport's envelope of the same bytes, so a retry after an upgrade still
// gets its first answer; and the migration goes down again.
func TestKeptResponsesSurviveTheUpgradeToOpaqueAnswers(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDatabase(t)
	if err := store.MigrateTo(url, store.EventStoreSchema, 3); err != nil {
		t.Fatal(err)
	}
	pool := pgtest.NewPool(t, url)
	ctx := context.Background()
	body := []byte(`{"id":"x","balance":"5.00"}` + "\n\x00" + string(make([]byte, 100)))
	if _, err := pool.Exec(ctx, `
INSERT INTO idempotency_keys (principal, method, path, idempotency_key, request_hash, response_status, response_headers, response_body, completed_at)
VALUES ('alice', 'POST', '/accounts', 'k', '\x01', 201, '{"ETag": "\"1\"", "Location": "/accounts/x"}', $1, now())`, body); err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateTo(url, store.EventStoreSchema, 4); err != nil {
		t.Fatal(err)
	}
	s := store.NewEventStore(pool, store.Options{DefaultCurrency: usd})
	got, err := s.LookupAnswer(ctx, command.IdempotencyScope{Principal: "alice", Method: "POST", Path: "/accounts", Key: "k"})
	if err != nil || got == nil {
		t.Fatalf("LookupAnswer after the upgrade = %v, %v", got, err)
	}
	var kept struct {
		Status int               `json:"status"`
		Header map[string]string `json:"header"`
		Body   []byte            `json:"body"`
	}
	if err := json.Unmarshal(got.Answer, &kept); err != nil {
		t.Fatalf("the kept answer is not the envelope: %v: %s", err, got.Answer)
	}
	if kept.Status != 201 || kept.Header["ETag"] != `"1"` || kept.Header["Location"] != "/accounts/x" || string(kept.Body) != string(body) {
		t.Errorf("after the upgrade: %d %v %q; want the first answer byte for byte", kept.Status, kept.Header, kept.Body)
	}
	if err := store.MigrateTo(url, store.EventStoreSchema, 3); err != nil {
		t.Fatalf("down again: %v", err)
	}
	var status int
	var back []byte
	if err := pool.QueryRow(ctx, `SELECT response_status, response_body FROM idempotency_keys`).Scan(&status, &back); err != nil || status != 201 || string(back) != string(body) {
		t.Errorf("after going down: %d %q (%v)", status, back, err)
	}
}
