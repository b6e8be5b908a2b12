package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// A transfer moves money between two accounts of one currency as a saga of
// single-stream appends (DESIGN §7): TransferSent on the source takes the
// money out, TransferReceived on the destination puts it in, or, when the
// destination refuses, TransferReturned on the source puts it back. Each
// account decides only its own step; the saga in the command layer runs them.

// Event type names of the transfer steps.
const (
	TypeTransferSent     = "TransferSent"
	TypeTransferReceived = "TransferReceived"
	TypeTransferReturned = "TransferReturned"
)

// TransferSent takes AmountMinor from the source for transfer TransferID.
type TransferSent struct {
	TransferID  uuid.UUID `json:"transfer_id"`
	ToAccountID uuid.UUID `json:"to_account_id"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	Description string    `json:"description"`
}

// TransferReceived puts AmountMinor into the destination.
type TransferReceived struct {
	TransferID    uuid.UUID `json:"transfer_id"`
	FromAccountID uuid.UUID `json:"from_account_id"`
	AmountMinor   int64     `json:"amount_minor"`
	Currency      string    `json:"currency"`
	Description   string    `json:"description"`
}

// TransferReturned gives AmountMinor back to the source when the destination
// refused it; Reason says why.
type TransferReturned struct {
	TransferID  uuid.UUID `json:"transfer_id"`
	ToAccountID uuid.UUID `json:"to_account_id"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	Reason      string    `json:"reason"`
}

// EventType implements Event.
func (TransferSent) EventType() string { return TypeTransferSent }

// EventType implements Event.
func (TransferReceived) EventType() string { return TypeTransferReceived }

// EventType implements Event.
func (TransferReturned) EventType() string { return TypeTransferReturned }

// SendTransfer records TransferSent: the first step, with the rules of a
// withdrawal. Errors: ErrAccountNotFound, ErrAccountClosed, ErrInvalid (amount,
// description, a transfer to this very account), ErrCurrencyMismatch,
// ErrInsufficientFunds.
func (a *Account) SendTransfer(transferID, to uuid.UUID, amount int64, cur Currency, description string, at time.Time) error {
	if err := a.checkMovement(amount, cur, description); err != nil {
		return err
	}
	if to == a.id {
		return &ValidationError{Fields: []FieldError{{Field: "to_account_id", Message: "must not be the source account"}}}
	}
	if amount > a.balance {
		return ErrInsufficientFunds
	}
	a.record(TransferSent{TransferID: transferID, ToAccountID: to, AmountMinor: amount, Currency: cur.Code(), Description: description}, at)
	return nil
}

// ReceiveTransfer records TransferReceived: the second step, with the rules of
// a deposit. Errors: ErrAccountNotFound, ErrAccountClosed, ErrCurrencyMismatch,
// ErrBalanceLimitExceeded (each a reason to return the money), ErrInvalid.
func (a *Account) ReceiveTransfer(transferID, from uuid.UUID, amount int64, cur Currency, description string, at time.Time) error {
	if err := a.checkMovement(amount, cur, description); err != nil {
		return err
	}
	if a.balance > MaxMinor-amount {
		return ErrBalanceLimitExceeded
	}
	a.record(TransferReceived{TransferID: transferID, FromAccountID: from, AmountMinor: amount, Currency: cur.Code(), Description: description}, at)
	return nil
}

// ReturnTransfer records TransferReturned on the source. It succeeds on any
// account that exists, a closed one included: the money left this account
// and must come back whatever happened to it since, or it would be lost.
// Errors: ErrAccountNotFound; ErrInvalid for an amount no transfer can have.
func (a *Account) ReturnTransfer(transferID, to uuid.UUID, amount int64, cur Currency, reason string, at time.Time) error {
	if !a.Exists() {
		return ErrAccountNotFound
	}
	if amount <= 0 || amount > MaxMinor || cur != a.currency {
		return fmt.Errorf("%w: a return of %d %s cannot belong to this account", ErrInvalid, amount, cur.Code())
	}
	a.record(TransferReturned{TransferID: transferID, ToAccountID: to, AmountMinor: amount, Currency: cur.Code(), Reason: reason}, at)
	return nil
}

// Errors of a transfer's destination, checked before step 1.
var (
	ErrDestinationNotFound = errors.New("destination account not found")
	ErrDestinationClosed   = errors.New("destination account is closed")
)

// CheckDestination checks that a, the destination of a transfer from an
// account in cur, can take it now: it exists, is open, is not the source and
// has the same currency. Step 2 decides again for real (it may close meanwhile).
// Errors: ErrDestinationNotFound, ErrDestinationClosed, ErrInvalid,
// ErrCurrencyMismatch.
func (a *Account) CheckDestination(from uuid.UUID, cur Currency) error {
	switch {
	case !a.Exists():
		return ErrDestinationNotFound
	case a.status == StatusClosed:
		return ErrDestinationClosed
	case a.id == from:
		return &ValidationError{Fields: []FieldError{{Field: "to_account_id", Message: "must not be the source account"}}}
	case a.currency != cur:
		return ErrCurrencyMismatch
	}
	return nil
}
