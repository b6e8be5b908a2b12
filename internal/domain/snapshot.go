package domain

import (
	"time"

	"github.com/google/uuid"
)

// SnapshotStateVersion is the shape of AccountState. Bump it whenever the shape or
// meaning of the state changes: a snapshot of another version is ignored and the
// stream replayed, so a bump costs one replay, never a wrong balance.
const SnapshotStateVersion = 1

// AccountState is the folded state of an account at Version, as kept in a snapshot.
type AccountState struct {
	ID           uuid.UUID `json:"id"`
	OwnerID      string    `json:"owner_id"`
	Currency     string    `json:"currency"`
	BalanceMinor int64     `json:"balance_minor"`
	Status       Status    `json:"status"`
	Version      int       `json:"version"`
	OpenedAt     time.Time `json:"opened_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	ClosedAt     time.Time `json:"closed_at"`
}

// State returns the account's folded state, uncommitted events included.
func (a *Account) State() AccountState {
	return AccountState{
		ID: a.id, OwnerID: a.ownerID, Currency: a.currency.Code(), BalanceMinor: a.balance,
		Status: a.status, Version: a.version, OpenedAt: a.openedAt, UpdatedAt: a.updatedAt, ClosedAt: a.closedAt,
	}
}

// AccountFromState rebuilds an aggregate from a snapshot; Apply the events after
// s.Version to bring it up to date. Errors: ErrInvalid when the state cannot be
// an account (unknown currency or status, version below 1).
func AccountFromState(s AccountState) (*Account, error) {
	cur, err := ParseCurrency(s.Currency)
	if err != nil {
		return nil, err
	}
	if s.Version < 1 || (s.Status != StatusActive && s.Status != StatusClosed) {
		return nil, ErrInvalid
	}
	return &Account{
		id: s.ID, ownerID: s.OwnerID, currency: cur, balance: s.BalanceMinor, status: s.Status,
		version: s.Version, openedAt: s.OpenedAt, updatedAt: s.UpdatedAt, closedAt: s.ClosedAt,
	}, nil
}
