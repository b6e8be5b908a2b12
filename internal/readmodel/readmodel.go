// Package readmodel describes the read tables the projector writes and the
// query side reads: their names, their columns in one order, and their rows
// as Go values. The tables themselves are created by migrations/read; the
// rules that fill them are the projections' (internal/projection).
package readmodel

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/domain"
)

// Table is a read table: its name and its columns, in the order in which
// rows are written (COPY, unnest) and read.
type Table struct {
	Name    string
	Columns []string
}

// ColumnList is the columns for a SELECT or an INSERT: "a, b, c".
func (t Table) ColumnList() string { return strings.Join(t.Columns, ", ") }

// The read tables.
var (
	AccountBalances = Table{Name: "account_balances", Columns: []string{
		"account_id", "owner_id", "currency", "balance_minor", "status", "version", "opened_at", "updated_at", "closed_at"}}
	TransactionHistory = Table{Name: "transaction_history", Columns: []string{
		"event_id", "account_id", "type", "amount_minor", "currency", "description", "balance_after_minor", "version", "occurred_at",
		"transfer_id", "counterparty_account_id"}}
	DailySummaries = Table{Name: "daily_summaries", Columns: []string{
		"account_id", "day", "currency", "deposits_count", "deposits_total_minor", "withdrawals_count",
		"withdrawals_total_minor", "closing_balance_minor", "last_version",
		"transfers_in_count", "transfers_in_total_minor", "transfers_out_count", "transfers_out_total_minor"}}
	Transfers = Table{Name: "transfers", Columns: []string{
		"transfer_id", "from_account_id", "to_account_id", "amount_minor", "currency", "description",
		"status", "reason", "created_at", "completed_at"}}
)

// CheckpointTable holds one row per projection: the position of the last event
// it applied, committed with its writes.
const CheckpointTable = "projection_checkpoints"

// Transaction types in transaction_history.type.
const (
	TypeDeposit          = "deposit"
	TypeWithdrawal       = "withdrawal"
	TypeTransferOut      = "transfer_out"      // TransferSent: the money left the source
	TypeTransferIn       = "transfer_in"       // TransferReceived: it reached the destination
	TypeTransferReturned = "transfer_returned" // TransferReturned: it came back to the source
)

// Transfer statuses in transfers.status.
const (
	TransferPending   = "pending"
	TransferCompleted = "completed"
	TransferReturned  = "returned"
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

// Transaction is a row of transaction_history: one deposit, withdrawal or
// step of a transfer.
type Transaction struct {
	EventID           uuid.UUID
	AccountID         uuid.UUID
	Type              string // one of the Type constants
	AmountMinor       int64
	Currency          string
	Description       string // "" when the event has none
	BalanceAfterMinor int64
	Version           int
	OccurredAt        time.Time // the event's recorded_at
	// TransferID and CounterpartyAccountID are nil for deposits and
	// withdrawals. The counterparty is the destination for transfer_out and
	// transfer_returned, the source for transfer_in.
	TransferID            *uuid.UUID
	CounterpartyAccountID *uuid.UUID
}

// Transfer is a row of transfers: one transfer as its steps so far make it.
type Transfer struct {
	TransferID    uuid.UUID
	FromAccountID uuid.UUID
	ToAccountID   uuid.UUID
	AmountMinor   int64
	Currency      string
	Description   string
	Status        string     // TransferPending, TransferCompleted or TransferReturned
	Reason        *string    // nil unless returned
	CreatedAt     time.Time  // TransferSent's recorded_at
	CompletedAt   *time.Time // the finishing step's recorded_at; nil while pending
}

// DayKey names a row of daily_summaries.
type DayKey struct {
	AccountID uuid.UUID
	Day       time.Time // UTC midnight of the day
}

// DailySummary is a row of daily_summaries: an account's money movements on one
// UTC day (of recorded_at). Days without movements have no row. A returned
// transfer counts as a transfer in (the money came in again).
// The totals are numeric in SQL: they have no bound (domain.Total).
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
	LastVersion            int
	TransfersInCount       int
	TransfersInTotalMinor  domain.Total
	TransfersOutCount      int
	TransfersOutTotalMinor domain.Total
}

// UTCDay returns the UTC date of t as UTC midnight: the day of daily_summaries.
func UTCDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// DailySummariesSelect is the SELECT list of daily_summaries in column order,
// with the numeric totals as text, as ScanDailySummaries reads them: exact
// whatever their size.
const DailySummariesSelect = `account_id, day, currency, deposits_count, deposits_total_minor::text, withdrawals_count,
       withdrawals_total_minor::text, closing_balance_minor, last_version,
       transfers_in_count, transfers_in_total_minor::text, transfers_out_count, transfers_out_total_minor::text`

// ScanDailySummaries reads rows of DailySummariesSelect, calling fn with
// each. Errors: fn's, the rows', or a total that is not a whole number.
func ScanDailySummaries(rows pgx.Rows, fn func(DailySummary) error) error {
	var (
		d                       DailySummary
		depTotal, wd, tin, tout string
	)
	_, err := pgx.ForEachRow(rows, []any{&d.AccountID, &d.Day, &d.Currency, &d.DepositsCount, &depTotal, &d.WithdrawalsCount, &wd, &d.ClosingBalanceMinor, &d.LastVersion,
		&d.TransfersInCount, &tin, &d.TransfersOutCount, &tout}, func() error {
		v := d
		for _, t := range []struct {
			into *domain.Total
			text string
		}{{&v.DepositsTotalMinor, depTotal}, {&v.WithdrawalsTotalMinor, wd}, {&v.TransfersInTotalMinor, tin}, {&v.TransfersOutTotalMinor, tout}} {
			var err error
			if *t.into, err = domain.ParseTotal(t.text); err != nil {
				return fmt.Errorf("daily_summaries of account %s: %w", v.AccountID, err)
			}
		}
		v.Day = UTCDay(v.Day)
		return fn(v)
	})
	return err
}

// ScanTransfers reads rows of Transfers.ColumnList(), calling fn with each.
func ScanTransfers(rows pgx.Rows, fn func(Transfer) error) error {
	var t Transfer
	_, err := pgx.ForEachRow(rows, []any{&t.TransferID, &t.FromAccountID, &t.ToAccountID, &t.AmountMinor, &t.Currency,
		&t.Description, &t.Status, &t.Reason, &t.CreatedAt, &t.CompletedAt}, func() error {
		v := t
		t.Reason, t.CompletedAt = nil, nil // the next row must not share their pointees
		return fn(v)
	})
	return err
}
