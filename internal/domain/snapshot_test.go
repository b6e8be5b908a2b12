package domain_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evbank/bank/internal/domain"
)

func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	histories := map[string][]domain.Event{
		"opened":       {opened()},
		"with balance": {opened(), deposited(12550), withdrawn(50)},
		"closed":       {opened(), deposited(5), withdrawn(5), closed()},
		"KWD":          {openedIn("KWD"), domain.MoneyDeposited{AmountMinor: 1250, Currency: "KWD"}},
		"at the limit": {opened(), deposited(domain.MaxMinor)},
	}
	for name, history := range histories {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := given(history...)
			state := a.State()

			// Through JSON, as a snapshot is stored.
			data, err := json.Marshal(state)
			if err != nil {
				t.Fatal(err)
			}
			var stored domain.AccountState
			if err := json.Unmarshal(data, &stored); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(state, stored); diff != "" {
				t.Errorf("JSON round trip (-state +stored):\n%s", diff)
			}

			b, err := domain.AccountFromState(stored)
			if err != nil {
				t.Fatalf("AccountFromState(%+v): %v", stored, err)
			}
			if diff := cmp.Diff(state, b.State()); diff != "" {
				t.Errorf("AccountFromState(State()) (-want +got):\n%s", diff)
			}
			if len(b.Uncommitted()) != 0 {
				t.Errorf("a restored account has uncommitted events: %v", b.Uncommitted())
			}
			if b.Currency() != a.Currency() {
				t.Errorf("Currency() = %#v, want %#v", b.Currency(), a.Currency())
			}

			// The restored aggregate decides exactly as the replayed one.
			for _, acc := range []*domain.Account{a, b} {
				_ = acc.Deposit(100, acc.Currency(), "after", t1)
				_ = acc.Close("", t1)
			}
			if diff := cmp.Diff(a.Uncommitted(), b.Uncommitted()); diff != "" {
				t.Errorf("decisions differ (-replayed +restored):\n%s", diff)
			}
			if diff := cmp.Diff(a.State(), b.State()); diff != "" {
				t.Errorf("states differ (-replayed +restored):\n%s", diff)
			}
		})
	}
}

func TestStateExcludesNothingUncommitted(t *testing.T) {
	t.Parallel()
	a, err := domain.Open(accountID, "alice", usd, 700, t1)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.AccountState{
		ID: accountID, OwnerID: "alice", Currency: "USD", BalanceMinor: 700, Status: domain.StatusActive,
		Version: 2, OpenedAt: t1, UpdatedAt: t1,
	}
	if diff := cmp.Diff(want, a.State()); diff != "" {
		t.Errorf("State() (-want +got):\n%s", diff)
	}
}

func TestAccountFromStateRejects(t *testing.T) {
	t.Parallel()
	valid := domain.AccountState{
		ID: accountID, OwnerID: "alice", Currency: "USD", BalanceMinor: 1, Status: domain.StatusActive,
		Version: 3, OpenedAt: t0, UpdatedAt: t0,
	}
	if _, err := domain.AccountFromState(valid); err != nil {
		t.Fatalf("AccountFromState(valid): %v", err)
	}
	tests := map[string]func(s *domain.AccountState){
		"unknown currency":   func(s *domain.AccountState) { s.Currency = "QQQ" },
		"no currency":        func(s *domain.AccountState) { s.Currency = "" },
		"lower-case code":    func(s *domain.AccountState) { s.Currency = "usd" },
		"version zero":       func(s *domain.AccountState) { s.Version = 0 },
		"negative version":   func(s *domain.AccountState) { s.Version = -1 },
		"no status":          func(s *domain.AccountState) { s.Status = "" },
		"unknown status":     func(s *domain.AccountState) { s.Status = "frozen" },
		"status in capitals": func(s *domain.AccountState) { s.Status = "ACTIVE" },
	}
	for name, mutate := range tests {
		s := valid
		mutate(&s)
		a, err := domain.AccountFromState(s)
		if !errors.Is(err, domain.ErrInvalid) || a != nil {
			t.Errorf("%s: AccountFromState = %v, %v; want nil, ErrInvalid", name, a, err)
		}
	}
}

func TestSnapshotStateJSONShape(t *testing.T) {
	t.Parallel()
	s := domain.AccountState{
		ID: accountID, OwnerID: "alice", Currency: "USD", BalanceMinor: 12550, Status: domain.StatusClosed, Version: 4,
		OpenedAt: t0, UpdatedAt: t0, ClosedAt: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC),
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, `{"id":"6f1c2a52-7d3e-4b8e-9a51-0c2f5e8d9b10","owner_id":"alice","currency":"USD","balance_minor":12550,
		"status":"closed","version":4,"opened_at":"2024-01-02T03:04:05Z","updated_at":"2024-01-02T03:04:05Z",
		"closed_at":"2024-02-01T00:00:00Z"}`, data)
	if domain.SnapshotStateVersion != 1 {
		t.Errorf("SnapshotStateVersion = %d: a shape change needs this test updated too", domain.SnapshotStateVersion)
	}
}
