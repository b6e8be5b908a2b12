// Package projection keeps the read tables (account_balances,
// transaction_history, daily_summaries) up to date from the event store.
//
// A Runner tails the event store in the gap-safe order (eventlog.Tailer), folds
// each batch in memory per account and writes it set-based, committing the
// writes and each projection's checkpoint in one read-database transaction.
// Fold and Replay compute the same tables from scratch, in memory, through the
// aggregate's own Apply; Verify compares the two.
package projection

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
)

// Transaction types in transaction_history.type.
const (
	TypeDeposit    = "deposit"
	TypeWithdrawal = "withdrawal"
)

// AccountBalance is a row of account_balances.
type AccountBalance struct {
	AccountID    uuid.UUID
	OwnerID      string
	Currency     string
	BalanceMinor int64
	Status       string
	Version      int
	OpenedAt     time.Time
	UpdatedAt    time.Time
	ClosedAt     *time.Time // nil while open
}

// Transaction is a row of transaction_history: one deposit or withdrawal.
type Transaction struct {
	EventID           uuid.UUID
	AccountID         uuid.UUID
	Type              string // TypeDeposit or TypeWithdrawal
	AmountMinor       int64
	Currency          string
	Description       string // "" when the event has none
	BalanceAfterMinor int64
	Version           int
	OccurredAt        time.Time // the event's recorded_at
}

// DayKey names a row of daily_summaries.
type DayKey struct {
	AccountID uuid.UUID
	Day       time.Time // UTC midnight of the day
}

// DailySummary is a row of daily_summaries: an account's money movements on one
// UTC day (of recorded_at). Days without deposits or withdrawals have no row.
type DailySummary struct {
	AccountID             uuid.UUID
	Day                   time.Time // UTC midnight
	Currency              string
	DepositsCount         int
	DepositsTotalMinor    domain.Total
	WithdrawalsCount      int
	WithdrawalsTotalMinor domain.Total
	// ClosingBalanceMinor is the balance after the day's last movement (by version).
	ClosingBalanceMinor int64
	// LastVersion is the version of that movement.
	LastVersion int
}

// add counts one movement into the day. Errors: a total past what
// domain.Total holds, which no real day reaches.
func (d *DailySummary) add(typ string, amount int64) error {
	if typ == TypeDeposit {
		d.DepositsCount++
		return d.DepositsTotalMinor.Add(amount)
	}
	d.WithdrawalsCount++
	return d.WithdrawalsTotalMinor.Add(amount)
}

// Tables is the content of the three read tables.
type Tables struct {
	Balances map[uuid.UUID]AccountBalance
	History  map[uuid.UUID]Transaction // by event id
	Daily    map[DayKey]DailySummary
}

// NewTables returns empty Tables.
func NewTables() Tables {
	return Tables{
		Balances: map[uuid.UUID]AccountBalance{},
		History:  map[uuid.UUID]Transaction{},
		Daily:    map[DayKey]DailySummary{},
	}
}

// UTCDay returns the UTC date of t as UTC midnight: the day of daily_summaries.
func UTCDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Fold computes the read tables from a whole event history, in memory. It
// folds accounts with domain.Account.Apply, the code the write side uses, so it
// is an independent check of the Runner's incremental, set-based writes.
type Fold struct {
	accounts map[uuid.UUID]*domain.Account
	tables   Tables
}

// NewFold returns a Fold of no events.
func NewFold() *Fold {
	return &Fold{accounts: map[uuid.UUID]*domain.Account{}, tables: NewTables()}
}

// Apply folds one event. Each stream's events must come in version order from
// 1 without a gap, else a *ContiguityError (projection "fold") is returned.
func (f *Fold) Apply(e eventlog.RecordedEvent) error {
	a := f.accounts[e.StreamID]
	if a == nil {
		a = domain.NewAccount(e.StreamID)
	}
	if e.Version != a.Version()+1 {
		return &ContiguityError{Projection: "fold", StreamID: e.StreamID, Have: a.Version(), Got: e.Version, Position: eventlog.PositionOf(e)}
	}
	if err := checkFirst(a.Version(), e); err != nil {
		return err
	}
	a.Apply(e.Event, e.RecordedAt)
	f.accounts[e.StreamID] = a
	f.tables.Balances[e.StreamID] = balanceRow(e.StreamID, a)

	var (
		typ, cur, desc string
		amount         int64
	)
	switch ev := e.Event.(type) {
	case domain.MoneyDeposited:
		typ, amount, cur, desc = TypeDeposit, ev.AmountMinor, ev.Currency, ev.Description
	case domain.MoneyWithdrawn:
		typ, amount, cur, desc = TypeWithdrawal, ev.AmountMinor, ev.Currency, ev.Description
	default:
		return nil
	}
	f.tables.History[e.EventID] = Transaction{
		EventID: e.EventID, AccountID: e.StreamID, Type: typ, AmountMinor: amount, Currency: cur,
		Description: desc, BalanceAfterMinor: a.Balance(), Version: e.Version, OccurredAt: e.RecordedAt,
	}
	key := DayKey{AccountID: e.StreamID, Day: UTCDay(e.RecordedAt)}
	d := f.tables.Daily[key]
	d.AccountID, d.Day, d.Currency = key.AccountID, key.Day, cur
	if err := d.add(typ, amount); err != nil {
		return fmt.Errorf("fold: %s: %w", eventlog.PositionOf(e), err)
	}
	d.ClosingBalanceMinor, d.LastVersion = a.Balance(), e.Version
	f.tables.Daily[key] = d
	return nil
}

// Tables returns the folded tables. They are the Fold's own maps: copy them
// before applying more events if the result must not change.
func (f *Fold) Tables() Tables { return f.tables }

// balanceRow is the account_balances row of a; the key is the stream id.
func balanceRow(id uuid.UUID, a *domain.Account) AccountBalance {
	st := a.State()
	row := AccountBalance{
		AccountID: id, OwnerID: st.OwnerID, Currency: st.Currency, BalanceMinor: st.BalanceMinor,
		Status: string(st.Status), Version: st.Version, OpenedAt: st.OpenedAt, UpdatedAt: st.UpdatedAt,
	}
	if !st.ClosedAt.IsZero() {
		c := st.ClosedAt
		row.ClosedAt = &c
	}
	return row
}

// replayBatch is how many events Replay reads at a time.
const replayBatch = 5000

// Replay folds the event store from the start, in the gap-safe order, up to and
// including upTo, or every event readable now when upTo is the zero Position.
// It returns the tables and the position of the last event folded. Errors: as
// Tailer.Read and Fold.Apply; and an error when upTo is not reached, which
// means no event is at upTo.
func Replay(ctx context.Context, t eventlog.Tailer, upTo eventlog.Position) (Tables, eventlog.Position, error) {
	f := NewFold()
	var at eventlog.Position
	err := replay(ctx, t, upTo, func(e eventlog.RecordedEvent) error {
		at = eventlog.PositionOf(e)
		return f.Apply(e)
	})
	return f.Tables(), at, err
}

// replay calls fn for every event up to and including upTo (all readable
// events when upTo is zero).
func replay(ctx context.Context, t eventlog.Tailer, upTo eventlog.Position, fn func(eventlog.RecordedEvent) error) error {
	var after eventlog.Position
	for {
		if !upTo.IsZero() && !after.Less(upTo) {
			return nil
		}
		b, err := t.Read(ctx, after, replayBatch)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		for _, e := range b.Events {
			p := eventlog.PositionOf(e)
			if !upTo.IsZero() && !after.Less(upTo) {
				return nil
			}
			if !upTo.IsZero() && upTo.Less(p) {
				return fmt.Errorf("replay: no event at %s, the position to replay to (the next is at %s)", upTo, p)
			}
			if err := fn(e); err != nil {
				return err
			}
			after = p
		}
		if len(b.Events) < replayBatch {
			if !upTo.IsZero() && after.Less(upTo) {
				return fmt.Errorf("replay: the event store ends at %s, before %s, the position to replay to", after, upTo)
			}
			return nil
		}
	}
}
