package query

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
)

// Account is an account as the queries show it: money formatted in the
// account's currency, times in UTC, ClosedAt nil while the account is open.
type Account struct {
	ID        uuid.UUID  `json:"id"`
	OwnerID   string     `json:"owner_id"`
	Currency  string     `json:"currency"`
	Balance   string     `json:"balance"`
	Status    string     `json:"status"`
	Version   int        `json:"version"`
	OpenedAt  time.Time  `json:"opened_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	ClosedAt  *time.Time `json:"closed_at"`
}

// AccountView is the view of an aggregate, for answers that come from the
// event store (as_of) rather than from account_balances. Times are cut to
// microseconds, as account_balances (timestamptz) keeps them, so that both
// answers print the same instant the same way.
func AccountView(a *domain.Account) Account {
	v := Account{
		ID: a.ID(), OwnerID: a.OwnerID(), Currency: a.Currency().Code(),
		Balance: domain.FormatAmount(a.Balance(), a.Currency()), Status: string(a.Status()), Version: a.Version(),
		OpenedAt: micros(a.OpenedAt()), UpdatedAt: micros(a.UpdatedAt()),
	}
	if c := a.ClosedAt(); !c.IsZero() {
		c = micros(c)
		v.ClosedAt = &c
	}
	return v
}

func micros(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Transaction is one deposit, withdrawal or step of a transfer, with the
// balance after it.
type Transaction struct {
	EventID      uuid.UUID `json:"event_id"`
	Type         string    `json:"type"` // deposit, withdrawal, transfer_out, transfer_in or transfer_returned
	Amount       string    `json:"amount"`
	Description  string    `json:"description"` // "" when the event has none; a return's reason
	BalanceAfter string    `json:"balance_after"`
	Version      int       `json:"version"`
	OccurredAt   time.Time `json:"occurred_at"`
	// TransferID and CounterpartyAccountID are null for deposits and withdrawals.
	TransferID            *uuid.UUID `json:"transfer_id"`
	CounterpartyAccountID *uuid.UUID `json:"counterparty_account_id"`
}

// DailySummary is an account's money movements on one UTC day. A returned
// transfer counts as a transfer in.
type DailySummary struct {
	Date              string `json:"date"` // YYYY-MM-DD
	DepositsCount     int    `json:"deposits_count"`
	DepositsTotal     string `json:"deposits_total"`
	WithdrawalsCount  int    `json:"withdrawals_count"`
	WithdrawalsTotal  string `json:"withdrawals_total"`
	TransfersInCount  int    `json:"transfers_in_count"`
	TransfersInTotal  string `json:"transfers_in_total"`
	TransfersOutCount int    `json:"transfers_out_count"`
	TransfersOutTotal string `json:"transfers_out_total"`
	ClosingBalance    string `json:"closing_balance"`
}

// Transfer is a transfer as the API shows it (DESIGN §7). Reason is nil
// unless returned; CompletedAt is nil while pending.
type Transfer struct {
	ID            uuid.UUID  `json:"id"`
	FromAccountID uuid.UUID  `json:"from_account_id"`
	ToAccountID   uuid.UUID  `json:"to_account_id"`
	Amount        string     `json:"amount"`
	Currency      string     `json:"currency"`
	Description   string     `json:"description"`
	Status        string     `json:"status"`
	Reason        *string    `json:"reason"`
	CreatedAt     time.Time  `json:"created_at"`
	CompletedAt   *time.Time `json:"completed_at"`
}

// DateLayout is the form of a day in the API: YYYY-MM-DD.
const DateLayout = "2006-01-02"

// Summary counts the accounts and totals their balances per currency.
type Summary struct {
	Accounts AccountCounts   `json:"accounts"`
	Balances []CurrencyTotal `json:"balances"`
}

// AccountCounts is how many accounts exist, by status.
type AccountCounts struct {
	Total  int64 `json:"total"`
	Active int64 `json:"active"`
	Closed int64 `json:"closed"`
}

// CurrencyTotal is the sum of the balances of the accounts in one currency,
// and InFlight the sum of its pending transfers: money that has left a
// source and not yet reached a destination (DESIGN §7).
type CurrencyTotal struct {
	Currency string `json:"currency"`
	Total    string `json:"total"`
	InFlight string `json:"in_flight"`
}

// Page is one page of a keyset-paginated list. More reports that rows follow
// the last item; the caller turns that item into the next cursor.
type Page[T any] struct {
	Items []T
	More  bool
}

// currency parses a stored currency code. A code that does not parse means
// the read table holds something the write side never accepted.
func currency(code string) (domain.Currency, error) {
	c, err := domain.ParseCurrency(code)
	if err != nil {
		// Not wrapped: a broken table is not the client's invalid input.
		return domain.Currency{}, fmt.Errorf("read model holds an invalid currency %q: %s", code, err.Error())

	}
	return c, nil
}
