package domain

import (
	"time"

	"github.com/google/uuid"
)

// Event is something that happened to an account. Events are facts in the past
// tense; their fields are the current (schema version 2) shape.
type Event interface {
	// EventType is the stored name, the same in every schema version.
	EventType() string
}

// Event type names as stored in events.event_type.
const (
	TypeAccountOpened  = "AccountOpened"
	TypeMoneyDeposited = "MoneyDeposited"
	TypeMoneyWithdrawn = "MoneyWithdrawn"
	TypeAccountClosed  = "AccountClosed"
)

// CurrentSchemaVersion is the schema version every new event is written with.
const CurrentSchemaVersion = 2

// AccountOpened starts an account's stream. An opening deposit is a separate MoneyDeposited.
type AccountOpened struct {
	AccountID uuid.UUID `json:"account_id"`
	OwnerID   string    `json:"owner_id"`
	Currency  string    `json:"currency"`
	OpenedAt  time.Time `json:"opened_at"`
}

// MoneyDeposited adds AmountMinor to the balance.
type MoneyDeposited struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
}

// MoneyWithdrawn takes AmountMinor from the balance.
type MoneyWithdrawn struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
}

// AccountClosed ends the account; no command succeeds after it.
type AccountClosed struct {
	Reason   string    `json:"reason"`
	ClosedAt time.Time `json:"closed_at"`
}

// EventType implements Event.
func (AccountOpened) EventType() string { return TypeAccountOpened }

// EventType implements Event.
func (MoneyDeposited) EventType() string { return TypeMoneyDeposited }

// EventType implements Event.
func (MoneyWithdrawn) EventType() string { return TypeMoneyWithdrawn }

// EventType implements Event.
func (AccountClosed) EventType() string { return TypeAccountClosed }
