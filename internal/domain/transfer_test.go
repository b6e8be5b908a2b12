package domain_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

var (
	transferID = uuid.MustParse("0b7e3c1a-5f2d-4c8e-9d6a-1e2f3a4b5c6d")
	otherID    = uuid.MustParse("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
)

// TestTransferSteps: given a history, one step of a transfer records its event
// or refuses with the rule it breaks, recording nothing.
func TestTransferSteps(t *testing.T) {
	t.Parallel()
	send := func(amount int64, to uuid.UUID) func(a *domain.Account) error {
		return func(a *domain.Account) error { return a.SendTransfer(transferID, to, amount, usd, "rent", t1) }
	}
	receive := func(amount int64, cur domain.Currency) func(a *domain.Account) error {
		return func(a *domain.Account) error { return a.ReceiveTransfer(transferID, otherID, amount, cur, "rent", t1) }
	}
	ret := func(amount int64) func(a *domain.Account) error {
		return func(a *domain.Account) error {
			return a.ReturnTransfer(transferID, otherID, amount, usd, "destination_closed", t1)
		}
	}
	tests := []struct {
		name    string
		history []domain.Event
		step    func(a *domain.Account) error
		want    []domain.Event
		wantErr error
		balance int64
	}{
		{
			name: "send within the balance", history: []domain.Event{opened(), deposited(10000)}, step: send(2500, otherID),
			want:    []domain.Event{domain.TransferSent{TransferID: transferID, ToAccountID: otherID, AmountMinor: 2500, Currency: "USD", Description: "rent"}},
			balance: 7500,
		},
		{name: "send the whole balance", history: []domain.Event{opened(), deposited(100)}, step: send(100, otherID), balance: 0,
			want: []domain.Event{domain.TransferSent{TransferID: transferID, ToAccountID: otherID, AmountMinor: 100, Currency: "USD", Description: "rent"}}},
		{name: "send above the balance", history: []domain.Event{opened(), deposited(100)}, step: send(101, otherID), wantErr: domain.ErrInsufficientFunds, balance: 100},
		{name: "send from a closed account", history: []domain.Event{opened(), closed()}, step: send(1, otherID), wantErr: domain.ErrAccountClosed},
		{name: "send from nothing", step: send(1, otherID), wantErr: domain.ErrAccountNotFound},
		{name: "send to itself", history: []domain.Event{opened(), deposited(100)}, step: send(1, accountID), wantErr: domain.ErrInvalid, balance: 100},
		{name: "send zero", history: []domain.Event{opened(), deposited(100)}, step: send(0, otherID), wantErr: domain.ErrInvalid, balance: 100},
		{
			name: "receive", history: []domain.Event{opened()}, step: receive(2500, usd), balance: 2500,
			want: []domain.Event{domain.TransferReceived{TransferID: transferID, FromAccountID: otherID, AmountMinor: 2500, Currency: "USD", Description: "rent"}},
		},
		{name: "receive on a closed account", history: []domain.Event{opened(), closed()}, step: receive(1, usd), wantErr: domain.ErrAccountClosed},
		{name: "receive past the balance limit", history: []domain.Event{opened(), deposited(domain.MaxMinor)}, step: receive(1, usd), wantErr: domain.ErrBalanceLimitExceeded, balance: domain.MaxMinor},
		{name: "receive another currency", history: []domain.Event{opened()}, step: receive(1, jpy), wantErr: domain.ErrCurrencyMismatch},
		{
			name: "return to an open account", history: []domain.Event{opened(), deposited(100), sent(100)}, step: ret(100), balance: 100,
			want: []domain.Event{domain.TransferReturned{TransferID: transferID, ToAccountID: otherID, AmountMinor: 100, Currency: "USD", Reason: "destination_closed"}},
		},
		{
			// The money left this account: it comes back even after a close.
			name: "return to an account closed meanwhile", history: []domain.Event{opened(), deposited(100), sent(100), closed()}, step: ret(100), balance: 100,
			want: []domain.Event{domain.TransferReturned{TransferID: transferID, ToAccountID: otherID, AmountMinor: 100, Currency: "USD", Reason: "destination_closed"}},
		},
		{name: "return to nothing", step: ret(1), wantErr: domain.ErrAccountNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := given(tt.history...)
			before := a.Version()
			err := tt.step(a)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if d := cmp.Diff(tt.want, a.Uncommitted()); d != "" {
				t.Errorf("recorded events (-want +got):\n%s", d)
			}
			if tt.wantErr != nil && a.Version() != before {
				t.Errorf("a refused step moved the version from %d to %d", before, a.Version())
			}
			if a.Balance() != tt.balance {
				t.Errorf("balance %d, want %d", a.Balance(), tt.balance)
			}
		})
	}
}

func sent(minor int64) domain.Event {
	return domain.TransferSent{TransferID: transferID, ToAccountID: otherID, AmountMinor: minor, Currency: "USD"}
}

// TestTransferEventsRoundTrip: each step's event is stored and read back as it was.
func TestTransferEventsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range []domain.Event{
		domain.TransferSent{TransferID: transferID, ToAccountID: otherID, AmountMinor: 1, Currency: "USD", Description: "d"},
		domain.TransferReceived{TransferID: transferID, FromAccountID: otherID, AmountMinor: 2, Currency: "JPY", Description: ""},
		domain.TransferReturned{TransferID: transferID, ToAccountID: otherID, AmountMinor: 3, Currency: "KWD", Reason: "destination_closed"},
	} {
		typ, v, data, err := domain.EncodeEvent(e)
		if err != nil || v != domain.CurrentSchemaVersion {
			t.Fatalf("encode %T: v%d %v", e, v, err)
		}
		got, err := domain.DecodeEvent(typ, v, data, domain.UpcastContext{DefaultCurrency: usd})
		if err != nil {
			t.Fatalf("decode %s: %v", typ, err)
		}
		if d := cmp.Diff(e, got); d != "" {
			t.Errorf("%s round trip (-want +got):\n%s", typ, d)
		}
		if _, err := domain.DecodeEvent(typ, 1, data, domain.UpcastContext{DefaultCurrency: usd}); !errors.Is(err, domain.ErrUnknownEvent) {
			t.Errorf("%s v1 = %v; transfers have no legacy shape", typ, err)
		}
	}
}
