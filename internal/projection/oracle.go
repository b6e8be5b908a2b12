// This file is verify's oracle: the read tables computed again from the
// events through the domain aggregate, independently of the projections' rules.

package projection

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
)

// Tables is the content of the four read tables.
type Tables struct {
	Balances  map[uuid.UUID]readmodel.AccountBalance
	History   map[uuid.UUID]readmodel.Transaction // by event id
	Daily     map[readmodel.DayKey]readmodel.DailySummary
	Transfers map[uuid.UUID]readmodel.Transfer // by transfer id
}

// NewTables returns empty Tables.
func NewTables() Tables {
	return Tables{
		Balances:  map[uuid.UUID]readmodel.AccountBalance{},
		History:   map[uuid.UUID]readmodel.Transaction{},
		Daily:     map[readmodel.DayKey]readmodel.DailySummary{},
		Transfers: map[uuid.UUID]readmodel.Transfer{},
	}
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

	if err := f.transfer(e); err != nil {
		return err
	}

	// What the event did to the account's money, stated here in the oracle's
	// own words rather than through the projections' movement.
	var (
		typ, cur, desc        string
		amount                int64
		transfer, counterpart *uuid.UUID
		into                  func(d *readmodel.DailySummary) (*int, *domain.Total)
	)
	switch ev := e.Event.(type) {
	case domain.MoneyDeposited:
		typ, amount, cur, desc = readmodel.TypeDeposit, ev.AmountMinor, ev.Currency, ev.Description
		into = func(d *readmodel.DailySummary) (*int, *domain.Total) { return &d.DepositsCount, &d.DepositsTotalMinor }
	case domain.MoneyWithdrawn:
		typ, amount, cur, desc = readmodel.TypeWithdrawal, ev.AmountMinor, ev.Currency, ev.Description
		into = func(d *readmodel.DailySummary) (*int, *domain.Total) {
			return &d.WithdrawalsCount, &d.WithdrawalsTotalMinor
		}
	case domain.TransferSent:
		typ, amount, cur, desc = readmodel.TypeTransferOut, ev.AmountMinor, ev.Currency, ev.Description
		transfer, counterpart = &ev.TransferID, &ev.ToAccountID
		into = func(d *readmodel.DailySummary) (*int, *domain.Total) {
			return &d.TransfersOutCount, &d.TransfersOutTotalMinor
		}
	case domain.TransferReceived:
		typ, amount, cur, desc = readmodel.TypeTransferIn, ev.AmountMinor, ev.Currency, ev.Description
		transfer, counterpart = &ev.TransferID, &ev.FromAccountID
		into = func(d *readmodel.DailySummary) (*int, *domain.Total) {
			return &d.TransfersInCount, &d.TransfersInTotalMinor
		}
	case domain.TransferReturned:
		// The money came back: a transfer in (DESIGN §2), described by the reason.
		typ, amount, cur, desc = readmodel.TypeTransferReturned, ev.AmountMinor, ev.Currency, ev.Reason
		transfer, counterpart = &ev.TransferID, &ev.ToAccountID
		into = func(d *readmodel.DailySummary) (*int, *domain.Total) {
			return &d.TransfersInCount, &d.TransfersInTotalMinor
		}
	default:
		return nil
	}
	f.tables.History[e.EventID] = readmodel.Transaction{
		EventID: e.EventID, AccountID: e.StreamID, Type: typ, AmountMinor: amount, Currency: cur,
		Description: desc, BalanceAfterMinor: a.Balance(), Version: e.Version, OccurredAt: e.RecordedAt,
		TransferID: transfer, CounterpartyAccountID: counterpart,
	}
	key := readmodel.DayKey{AccountID: e.StreamID, Day: readmodel.UTCDay(e.RecordedAt)}
	d := f.tables.Daily[key]
	d.AccountID, d.Day, d.Currency = key.AccountID, key.Day, cur
	n, total := into(&d)
	*n++
	if err := total.Add(amount); err != nil {
		return fmt.Errorf("fold: %s: %w", eventlog.PositionOf(e), err)
	}
	d.ClosingBalanceMinor, d.LastVersion = a.Balance(), e.Version
	f.tables.Daily[key] = d
	return nil
}

// transfer folds e into the transfers the oracle knows: TransferSent makes
// one pending, TransferReceived completes it on its destination,
// TransferReturned returns it on its source. Errors: a step the saga never
// makes (a second send, a finish of an unknown or finished transfer, or on
// the wrong account), which is an inconsistent event log.
func (f *Fold) transfer(e eventlog.RecordedEvent) error {
	var (
		id, on uuid.UUID
		status string
		reason *string
	)
	switch ev := e.Event.(type) {
	case domain.TransferSent:
		if _, ok := f.tables.Transfers[ev.TransferID]; ok {
			return fmt.Errorf("fold: %s: transfer %s sent twice", eventlog.PositionOf(e), ev.TransferID)
		}
		f.tables.Transfers[ev.TransferID] = readmodel.Transfer{
			TransferID: ev.TransferID, FromAccountID: e.StreamID, ToAccountID: ev.ToAccountID, AmountMinor: ev.AmountMinor,
			Currency: ev.Currency, Description: ev.Description, Status: readmodel.TransferPending, CreatedAt: e.RecordedAt,
		}
		return nil
	case domain.TransferReceived:
		id, status = ev.TransferID, readmodel.TransferCompleted
	case domain.TransferReturned:
		r := ev.Reason
		id, status, reason = ev.TransferID, readmodel.TransferReturned, &r
	default:
		return nil
	}
	t, ok := f.tables.Transfers[id]
	switch {
	case !ok:
		return fmt.Errorf("fold: %s: transfer %s finished but never sent", eventlog.PositionOf(e), id)
	case t.Status != readmodel.TransferPending:
		return fmt.Errorf("fold: %s: transfer %s finished again (it is %s)", eventlog.PositionOf(e), id, t.Status)
	}
	on = t.FromAccountID
	if status == readmodel.TransferCompleted {
		on = t.ToAccountID
	}
	if e.StreamID != on {
		return fmt.Errorf("fold: %s: transfer %s finished on account %s, not %s", eventlog.PositionOf(e), id, e.StreamID, on)
	}
	at := e.RecordedAt
	t.Status, t.Reason, t.CompletedAt = status, reason, &at
	f.tables.Transfers[id] = t
	return nil
}

// Tables returns the folded tables. They are the Fold's own maps: copy them
// before applying more events if the result must not change.
func (f *Fold) Tables() Tables { return f.tables }

// balanceRow is the account_balances row of a; the key is the stream id.
func balanceRow(id uuid.UUID, a *domain.Account) readmodel.AccountBalance {
	st := a.State()
	row := readmodel.AccountBalance{
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
