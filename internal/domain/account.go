// Package domain holds the BankAccount aggregate, its events and money. It is
// pure: no I/O, no clock (callers pass the time in), nothing of the project imported.
package domain

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// StreamType is the stream_type of every account stream.
const StreamType = "BankAccount"

// Status is an account's lifecycle state.
type Status string

// The statuses an account passes through.
const (
	StatusActive Status = "active"
	StatusClosed Status = "closed"
)

// Text limits of the contract, in Unicode characters.
const (
	MaxOwnerIDLen     = 128
	MaxDescriptionLen = 500
)

// Account is the BankAccount aggregate. Commands (Deposit, Withdraw, Close) check
// the rules and record events; Apply only folds events, so replaying any
// history that was once accepted never fails.
type Account struct {
	id        uuid.UUID
	ownerID   string
	currency  Currency
	balance   int64
	status    Status
	version   int
	openedAt  time.Time
	updatedAt time.Time
	closedAt  time.Time

	pending []Event
}

// NewAccount returns an empty aggregate for id, ready to Apply its stream.
func NewAccount(id uuid.UUID) *Account {
	return &Account{id: id}
}

// Open returns a new account with AccountOpened and, when initialDeposit > 0, a
// MoneyDeposited recorded. Errors: as (*Account).Open.
func Open(id uuid.UUID, ownerID string, cur Currency, initialDeposit int64, at time.Time) (*Account, error) {
	a := NewAccount(id)
	if err := a.Open(ownerID, cur, initialDeposit, at); err != nil {
		return nil, err
	}
	return a, nil
}

// Open records AccountOpened and, when initialDeposit > 0, a MoneyDeposited on an
// empty stream. Errors: ErrAccountExists when the stream already holds an
// account; ErrInvalid for a bad owner id, a missing currency, a negative or
// oversized initial deposit.
func (a *Account) Open(ownerID string, cur Currency, initialDeposit int64, at time.Time) error {
	if a.Exists() {
		return ErrAccountExists
	}
	var verr ValidationError
	if err := ValidateOwnerID(ownerID); err != nil {
		verr.Add("owner_id", err)
	}
	if cur.IsZero() {
		verr.Add("currency", fmt.Errorf("%w: currency is required", ErrInvalid))
	}
	if initialDeposit < 0 || initialDeposit > MaxMinor {
		verr.Add("initial_deposit", fmt.Errorf("%w: initial deposit out of range", ErrInvalid))
	}
	if err := verr.Err(); err != nil {
		return err
	}
	a.record(AccountOpened{AccountID: a.id, OwnerID: ownerID, Currency: cur.Code(), OpenedAt: at.UTC()}, at)
	if initialDeposit > 0 {
		a.record(MoneyDeposited{AmountMinor: initialDeposit, Currency: cur.Code(), Description: "initial deposit"}, at)
	}
	return nil
}

// Deposit records MoneyDeposited. Errors: ErrAccountNotFound before opening,
// ErrAccountClosed, ErrInvalid for a non-positive amount or a bad description,
// ErrCurrencyMismatch, ErrBalanceLimitExceeded.
func (a *Account) Deposit(amount int64, cur Currency, description string, at time.Time) error {
	if err := a.checkMovement(amount, cur, description); err != nil {
		return err
	}
	if a.balance > MaxMinor-amount {
		return ErrBalanceLimitExceeded
	}
	a.record(MoneyDeposited{AmountMinor: amount, Currency: cur.Code(), Description: description}, at)
	return nil
}

// Withdraw records MoneyWithdrawn. Errors: as Deposit, and ErrInsufficientFunds
// when amount is above the balance.
func (a *Account) Withdraw(amount int64, cur Currency, description string, at time.Time) error {
	if err := a.checkMovement(amount, cur, description); err != nil {
		return err
	}
	if amount > a.balance {
		return ErrInsufficientFunds
	}
	a.record(MoneyWithdrawn{AmountMinor: amount, Currency: cur.Code(), Description: description}, at)
	return nil
}

func (a *Account) checkMovement(amount int64, cur Currency, description string) error {
	if err := a.checkOpen(); err != nil {
		return err
	}
	var verr ValidationError
	if amount <= 0 || amount > MaxMinor {
		verr.Add("amount", fmt.Errorf("%w: amount must be positive and at most %s", ErrInvalid, FormatAmount(MaxMinor, a.currency)))
	}
	if err := ValidateText(description, MaxDescriptionLen); err != nil {
		verr.Add("description", err)
	}
	if err := verr.Err(); err != nil {
		return err
	}
	if cur != a.currency {
		return ErrCurrencyMismatch
	}
	return nil
}

// Close records AccountClosed. Errors: ErrAccountNotFound, ErrAccountClosed,
// ErrBalanceNotZero, ErrInvalid for a bad reason.
func (a *Account) Close(reason string, at time.Time) error {
	if err := a.checkOpen(); err != nil {
		return err
	}
	if err := ValidateText(reason, MaxDescriptionLen); err != nil {
		return &ValidationError{Fields: []FieldError{{Field: "reason", Message: strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")}}}
	}
	if a.balance != 0 {
		return ErrBalanceNotZero
	}
	a.record(AccountClosed{Reason: reason, ClosedAt: at.UTC()}, at)
	return nil
}

func (a *Account) checkOpen() error {
	switch {
	case a.version == 0:
		return ErrAccountNotFound
	case a.status == StatusClosed:
		return ErrAccountClosed
	}
	return nil
}

func (a *Account) record(e Event, at time.Time) {
	a.Apply(e, at)
	a.pending = append(a.pending, e)
}

// Apply folds one event, stored at recordedAt, into the state and advances the
// version by one. It never validates: history is fact.
func (a *Account) Apply(e Event, recordedAt time.Time) {
	switch e := e.(type) {
	case AccountOpened:
		a.id = e.AccountID
		a.ownerID = e.OwnerID
		// A stored code was valid when written; a lookup failure here would mean a
		// corrupt store, and Apply must not fail, so keep the code with 0 digits.
		cur, err := ParseCurrency(e.Currency)
		if err != nil {
			cur = Currency{code: e.Currency}
		}
		a.currency = cur
		a.status = StatusActive
		a.openedAt = e.OpenedAt
	case MoneyDeposited:
		a.balance += e.AmountMinor
	case MoneyWithdrawn:
		a.balance -= e.AmountMinor
	case AccountClosed:
		a.status = StatusClosed
		a.closedAt = e.ClosedAt
	case TransferSent:
		a.balance -= e.AmountMinor
	case TransferReceived:
		a.balance += e.AmountMinor
	case TransferReturned:
		a.balance += e.AmountMinor
	}
	a.version++
	a.updatedAt = recordedAt.UTC()
}

// Uncommitted returns the events recorded since the aggregate was loaded.
func (a *Account) Uncommitted() []Event { return a.pending }

// MarkCommitted forgets the uncommitted events once they are stored.
func (a *Account) MarkCommitted() { a.pending = nil }

// Copy returns the account as it now stands, without its uncommitted events:
// the state one of several commands decided on one aggregate left it in.
func (a *Account) Copy() *Account {
	c := *a
	c.pending = nil
	return &c
}

// ID returns the account id.
func (a *Account) ID() uuid.UUID { return a.id }

// OwnerID returns the owner id.
func (a *Account) OwnerID() string { return a.ownerID }

// Currency returns the account's currency.
func (a *Account) Currency() Currency { return a.currency }

// Balance returns the balance in minor units.
func (a *Account) Balance() int64 { return a.balance }

// Status returns active or closed.
func (a *Account) Status() Status { return a.status }

// Version is the number of events in the stream, uncommitted ones included.
func (a *Account) Version() int { return a.version }

// Exists reports whether the account has been opened.
func (a *Account) Exists() bool { return a.version > 0 }

// OpenedAt returns when the account was opened.
func (a *Account) OpenedAt() time.Time { return a.openedAt }

// UpdatedAt returns when the last event was recorded.
func (a *Account) UpdatedAt() time.Time { return a.updatedAt }

// ClosedAt returns when the account was closed, or the zero time.
func (a *Account) ClosedAt() time.Time { return a.closedAt }
