package projection

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
)

// oracleTable is verify's own account of one read table: how to read it,
// how to take the oracle's rows of it, and how to compare the two. It is
// written apart from the projections on purpose (see Verify).
type oracleTable struct {
	table   readmodel.Table
	read    func(ctx context.Context, tx pgx.Tx, into *Tables) error
	take    func(from Tables, into *Tables)
	compare func(want, got Tables) []Drift
}

// oracleTables are the tables the oracle knows, in the order drifts are listed.
var oracleTables = []oracleTable{
	{readmodel.AccountBalances,
		func(ctx context.Context, tx pgx.Tx, t *Tables) error { return readBalances(ctx, tx, t.Balances) },
		func(from Tables, into *Tables) { into.Balances = maps.Clone(from.Balances) },
		func(want, got Tables) []Drift { return compareBalances(want.Balances, got.Balances) }},
	{readmodel.TransactionHistory,
		func(ctx context.Context, tx pgx.Tx, t *Tables) error { return readHistory(ctx, tx, t.History) },
		func(from Tables, into *Tables) { into.History = maps.Clone(from.History) },
		func(want, got Tables) []Drift { return compareHistory(want.History, got.History) }},
	{readmodel.DailySummaries,
		func(ctx context.Context, tx pgx.Tx, t *Tables) error { return readDaily(ctx, tx, t.Daily) },
		func(from Tables, into *Tables) { into.Daily = maps.Clone(from.Daily) },
		func(want, got Tables) []Drift { return compareDaily(want.Daily, got.Daily) }},
	{readmodel.Transfers,
		func(ctx context.Context, tx pgx.Tx, t *Tables) error { return readTransfers(ctx, tx, t.Transfers) },
		func(from Tables, into *Tables) { into.Transfers = maps.Clone(from.Transfers) },
		func(want, got Tables) []Drift { return compareTransfers(want.Transfers, got.Transfers) }},
}

func oracleOf(t readmodel.Table) (oracleTable, bool) {
	for _, o := range oracleTables {
		if o.table.Name == t.Name {
			return o, true
		}
	}
	return oracleTable{}, false
}

// ReadTables reads the read tables the oracle knows and the checkpoints from
// one snapshot of the read database (a REPEATABLE READ, READ ONLY transaction).
func ReadTables(ctx context.Context, read *pgxpool.Pool) (Tables, map[string]eventlog.Position, error) {
	t := NewTables()
	var cps map[string]eventlog.Position
	err := pgx.BeginTxFunc(ctx, read, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if cps, err = readCheckpoints(ctx, tx); err != nil {
			return err
		}
		for _, o := range oracleTables {
			if err := o.read(ctx, tx, &t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Tables{}, nil, fmt.Errorf("read tables: %w", err)
	}
	return t, cps, nil
}

func readBalances(ctx context.Context, tx pgx.Tx, into map[uuid.UUID]readmodel.AccountBalance) error {
	rows, err := tx.Query(ctx, `SELECT `+readmodel.AccountBalances.ColumnList()+` FROM `+ident(readmodel.AccountBalances.Name))
	if err != nil {
		return err
	}
	var r readmodel.AccountBalance
	_, err = pgx.ForEachRow(rows, []any{&r.AccountID, &r.OwnerID, &r.Currency, &r.BalanceMinor, &r.Status, &r.Version, &r.OpenedAt, &r.UpdatedAt, &r.ClosedAt}, func() error {
		into[r.AccountID] = r
		r = readmodel.AccountBalance{} // the next row must not share ClosedAt's pointee
		return nil
	})
	return err
}

func readHistory(ctx context.Context, tx pgx.Tx, into map[uuid.UUID]readmodel.Transaction) error {
	rows, err := tx.Query(ctx, `SELECT `+readmodel.TransactionHistory.ColumnList()+` FROM `+ident(readmodel.TransactionHistory.Name))
	if err != nil {
		return err
	}
	var r readmodel.Transaction
	_, err = pgx.ForEachRow(rows, []any{&r.EventID, &r.AccountID, &r.Type, &r.AmountMinor, &r.Currency, &r.Description, &r.BalanceAfterMinor, &r.Version, &r.OccurredAt,
		&r.TransferID, &r.CounterpartyAccountID}, func() error {
		into[r.EventID] = r
		r.TransferID, r.CounterpartyAccountID = nil, nil // the next row must not share their pointees
		return nil
	})
	return err
}

func readTransfers(ctx context.Context, tx pgx.Tx, into map[uuid.UUID]readmodel.Transfer) error {
	rows, err := tx.Query(ctx, `SELECT `+readmodel.Transfers.ColumnList()+` FROM `+ident(readmodel.Transfers.Name))
	if err != nil {
		return err
	}
	return readmodel.ScanTransfers(rows, func(t readmodel.Transfer) error {
		into[t.TransferID] = t
		return nil
	})
}

func readDaily(ctx context.Context, tx pgx.Tx, into map[readmodel.DayKey]readmodel.DailySummary) error {
	rows, err := tx.Query(ctx, `SELECT `+readmodel.DailySummariesSelect+` FROM `+ident(readmodel.DailySummaries.Name))
	if err != nil {
		return err
	}
	return readmodel.ScanDailySummaries(rows, func(d readmodel.DailySummary) error {
		into[readmodel.DayKey{AccountID: d.AccountID, Day: d.Day}] = d
		return nil
	})
}

// Drift is one difference between a read table and the fold of the event store.
type Drift struct {
	AccountID  uuid.UUID
	Projection string
	Detail     string
}

func (d Drift) String() string {
	return fmt.Sprintf("account %s: %s: %s", d.AccountID, d.Projection, d.Detail)
}

// Report is the outcome of Verify.
type Report struct {
	// Checkpoints are the positions each projection was compared at.
	Checkpoints map[string]eventlog.Position
	// Accounts is how many accounts the event store holds up to the checkpoints.
	Accounts int
	// Drifts lists every difference, by account.
	Drifts []Drift
	// Unverified lists the tables of projections the oracle knows nothing
	// of: nothing was checked there.
	Unverified []string
}

// DriftedAccounts returns the accounts with at least one drift, sorted.
func (r *Report) DriftedAccounts() []uuid.UUID {
	seen := map[uuid.UUID]bool{}
	for _, d := range r.Drifts {
		seen[d.AccountID] = true
	}
	ids := slices.Collect(maps.Keys(seen))
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	return ids
}

// Verify compares every read table with a fresh fold of the event store, each
// at its projection's checkpoint, so that it can run beside a live projector.
//
// The fold is an independent oracle on purpose: it replays each stream
// through the domain aggregate (the write side's own Apply) and states what
// each table must hold in code of its own (oracle.go, oracleTables), never
// through the projections' rules, so that a wrong rule in a projection cannot
// hide in verify too. A table it has no oracle for is listed in
// Report.Unverified rather than passed.
//
// Drift is reported in the Report, not as an error. Errors: the tables or
// the events cannot be read, a checkpoint names no event (see
// eventlog.ErrRebuildRequired), or the events themselves are inconsistent.
func Verify(ctx context.Context, t eventlog.Tailer, read *pgxpool.Pool) (*Report, error) {
	got, cps, err := ReadTables(ctx, read)
	if err != nil {
		return nil, err
	}
	type check struct {
		projection string
		oracle     oracleTable
	}
	var (
		checks     []check
		unverified []string
	)
	for _, p := range All() {
		if _, ok := cps[p.Name()]; !ok {
			cps[p.Name()] = eventlog.Position{} // never ran: the table must be empty
		}
		for _, tb := range p.Tables() {
			o, ok := oracleOf(tb)
			if !ok {
				unverified = append(unverified, tb.Name)
				continue
			}
			checks = append(checks, check{p.Name(), o})
		}
	}
	// Fold once in the global order, copying each table as the fold passes
	// its projection's checkpoint.
	order := slices.Clone(checks)
	slices.SortStableFunc(order, func(a, b check) int {
		switch {
		case cps[a.projection].Less(cps[b.projection]):
			return -1
		case cps[b.projection].Less(cps[a.projection]):
			return 1
		}
		return 0
	})
	f := NewFold()
	want := NewTables()
	accounts := 0
	take := func(c check) {
		tb := f.Tables()
		c.oracle.take(tb, &want)
		accounts = len(tb.Balances)
	}
	next := 0
	var last eventlog.Position
	if len(order) > 0 {
		last = cps[order[len(order)-1].projection]
	}
	if !last.IsZero() {
		err = replay(ctx, t, last, func(e eventlog.RecordedEvent) error {
			for next < len(order) && cps[order[next].projection].Less(eventlog.PositionOf(e)) {
				take(order[next])
				next++
			}
			return f.Apply(e)
		})
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	for ; next < len(order); next++ {
		take(order[next])
	}

	rep := &Report{Checkpoints: cps, Accounts: accounts, Unverified: unverified}
	for _, c := range checks {
		rep.Drifts = append(rep.Drifts, c.oracle.compare(want, got)...)
	}
	slices.SortStableFunc(rep.Drifts, func(a, b Drift) int { return strings.Compare(a.AccountID.String(), b.AccountID.String()) })
	return rep, nil
}

// Compare returns every difference between want (a fold) and got (the tables).
func Compare(want, got Tables) []Drift {
	var ds []Drift
	for _, o := range oracleTables {
		ds = append(ds, o.compare(want, got)...)
	}
	return ds
}

// sameTime compares at the database's precision (microseconds).
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

func sameTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return sameTime(*a, *b)
}

// fieldDiffs lists "name: table has X, events give Y" for each differing field.
type fieldDiffs []string

func (d *fieldDiffs) check(name string, differ bool, got, want any) {
	if differ {
		*d = append(*d, fmt.Sprintf("%s is %v, the events give %v", name, got, want))
	}
}

func fmtTimePtr(t *time.Time) any {
	if t == nil {
		return "null"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func compareBalances(want, got map[uuid.UUID]readmodel.AccountBalance) []Drift {
	var ds []Drift
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			ds = append(ds, Drift{id, AccountBalancesName, fmt.Sprintf("row missing (the events give version %d, balance %d)", w.Version, w.BalanceMinor)})
			continue
		}
		var d fieldDiffs
		d.check("owner_id", g.OwnerID != w.OwnerID, g.OwnerID, w.OwnerID)
		d.check("currency", g.Currency != w.Currency, g.Currency, w.Currency)
		d.check("balance_minor", g.BalanceMinor != w.BalanceMinor, g.BalanceMinor, w.BalanceMinor)
		d.check("status", g.Status != w.Status, g.Status, w.Status)
		d.check("version", g.Version != w.Version, g.Version, w.Version)
		d.check("opened_at", !sameTime(g.OpenedAt, w.OpenedAt), g.OpenedAt.UTC().Format(time.RFC3339Nano), w.OpenedAt.UTC().Format(time.RFC3339Nano))
		d.check("updated_at", !sameTime(g.UpdatedAt, w.UpdatedAt), g.UpdatedAt.UTC().Format(time.RFC3339Nano), w.UpdatedAt.UTC().Format(time.RFC3339Nano))
		d.check("closed_at", !sameTimePtr(g.ClosedAt, w.ClosedAt), fmtTimePtr(g.ClosedAt), fmtTimePtr(w.ClosedAt))
		if len(d) > 0 {
			ds = append(ds, Drift{id, AccountBalancesName, strings.Join(d, "; ")})
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			ds = append(ds, Drift{id, AccountBalancesName, fmt.Sprintf("row (version %d) for an account the events do not hold", g.Version)})
		}
	}
	return ds
}

func compareHistory(want, got map[uuid.UUID]readmodel.Transaction) []Drift {
	var ds []Drift
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			ds = append(ds, Drift{w.AccountID, TransactionHistoryName, fmt.Sprintf("row of event %s (version %d) missing", id, w.Version)})
			continue
		}
		var d fieldDiffs
		d.check("account_id", g.AccountID != w.AccountID, g.AccountID, w.AccountID)
		d.check("type", g.Type != w.Type, g.Type, w.Type)
		d.check("amount_minor", g.AmountMinor != w.AmountMinor, g.AmountMinor, w.AmountMinor)
		d.check("currency", g.Currency != w.Currency, g.Currency, w.Currency)
		d.check("description", g.Description != w.Description, fmt.Sprintf("%q", g.Description), fmt.Sprintf("%q", w.Description))
		d.check("balance_after_minor", g.BalanceAfterMinor != w.BalanceAfterMinor, g.BalanceAfterMinor, w.BalanceAfterMinor)
		d.check("version", g.Version != w.Version, g.Version, w.Version)
		d.check("occurred_at", !sameTime(g.OccurredAt, w.OccurredAt), g.OccurredAt.UTC().Format(time.RFC3339Nano), w.OccurredAt.UTC().Format(time.RFC3339Nano))
		d.check("transfer_id", !sameUUIDPtr(g.TransferID, w.TransferID), fmtUUIDPtr(g.TransferID), fmtUUIDPtr(w.TransferID))
		d.check("counterparty_account_id", !sameUUIDPtr(g.CounterpartyAccountID, w.CounterpartyAccountID), fmtUUIDPtr(g.CounterpartyAccountID), fmtUUIDPtr(w.CounterpartyAccountID))
		if len(d) > 0 {
			ds = append(ds, Drift{w.AccountID, TransactionHistoryName, fmt.Sprintf("event %s (version %d): %s", id, w.Version, strings.Join(d, "; "))})
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			ds = append(ds, Drift{g.AccountID, TransactionHistoryName, fmt.Sprintf("row of event %s (version %d) that the events do not hold", id, g.Version)})
		}
	}
	return ds
}

func compareDaily(want, got map[readmodel.DayKey]readmodel.DailySummary) []Drift {
	var ds []Drift
	day := func(k readmodel.DayKey) string { return k.Day.Format(time.DateOnly) }
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			ds = append(ds, Drift{k.AccountID, DailySummariesName, fmt.Sprintf("%s: row missing", day(k))})
			continue
		}
		var d fieldDiffs
		d.check("currency", g.Currency != w.Currency, g.Currency, w.Currency)
		d.check("deposits_count", g.DepositsCount != w.DepositsCount, g.DepositsCount, w.DepositsCount)
		d.check("deposits_total_minor", g.DepositsTotalMinor != w.DepositsTotalMinor, g.DepositsTotalMinor, w.DepositsTotalMinor)
		d.check("withdrawals_count", g.WithdrawalsCount != w.WithdrawalsCount, g.WithdrawalsCount, w.WithdrawalsCount)
		d.check("withdrawals_total_minor", g.WithdrawalsTotalMinor != w.WithdrawalsTotalMinor, g.WithdrawalsTotalMinor, w.WithdrawalsTotalMinor)
		d.check("closing_balance_minor", g.ClosingBalanceMinor != w.ClosingBalanceMinor, g.ClosingBalanceMinor, w.ClosingBalanceMinor)
		d.check("last_version", g.LastVersion != w.LastVersion, g.LastVersion, w.LastVersion)
		d.check("transfers_in_count", g.TransfersInCount != w.TransfersInCount, g.TransfersInCount, w.TransfersInCount)
		d.check("transfers_in_total_minor", g.TransfersInTotalMinor != w.TransfersInTotalMinor, g.TransfersInTotalMinor, w.TransfersInTotalMinor)
		d.check("transfers_out_count", g.TransfersOutCount != w.TransfersOutCount, g.TransfersOutCount, w.TransfersOutCount)
		d.check("transfers_out_total_minor", g.TransfersOutTotalMinor != w.TransfersOutTotalMinor, g.TransfersOutTotalMinor, w.TransfersOutTotalMinor)
		if len(d) > 0 {
			ds = append(ds, Drift{k.AccountID, DailySummariesName, fmt.Sprintf("%s: %s", day(k), strings.Join(d, "; "))})
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			ds = append(ds, Drift{k.AccountID, DailySummariesName, fmt.Sprintf("%s: row for a day without movements in the events", day(k))})
		}
	}
	return ds
}

func sameUUIDPtr(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func fmtUUIDPtr(id *uuid.UUID) any {
	if id == nil {
		return "null"
	}
	return *id
}

func fmtStringPtr(s *string) any {
	if s == nil {
		return "null"
	}
	return fmt.Sprintf("%q", *s)
}

// compareTransfers names the transfer, and as its account the source: the
// account whose owner started it.
func compareTransfers(want, got map[uuid.UUID]readmodel.Transfer) []Drift {
	var ds []Drift
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			ds = append(ds, Drift{w.FromAccountID, TransfersName, fmt.Sprintf("transfer %s: row missing (the events give it %s)", id, w.Status)})
			continue
		}
		var d fieldDiffs
		d.check("from_account_id", g.FromAccountID != w.FromAccountID, g.FromAccountID, w.FromAccountID)
		d.check("to_account_id", g.ToAccountID != w.ToAccountID, g.ToAccountID, w.ToAccountID)
		d.check("amount_minor", g.AmountMinor != w.AmountMinor, g.AmountMinor, w.AmountMinor)
		d.check("currency", g.Currency != w.Currency, g.Currency, w.Currency)
		d.check("description", g.Description != w.Description, fmt.Sprintf("%q", g.Description), fmt.Sprintf("%q", w.Description))
		d.check("status", g.Status != w.Status, g.Status, w.Status)
		d.check("reason", fmtStringPtr(g.Reason) != fmtStringPtr(w.Reason), fmtStringPtr(g.Reason), fmtStringPtr(w.Reason))
		d.check("created_at", !sameTime(g.CreatedAt, w.CreatedAt), g.CreatedAt.UTC().Format(time.RFC3339Nano), w.CreatedAt.UTC().Format(time.RFC3339Nano))
		d.check("completed_at", !sameTimePtr(g.CompletedAt, w.CompletedAt), fmtTimePtr(g.CompletedAt), fmtTimePtr(w.CompletedAt))
		if len(d) > 0 {
			ds = append(ds, Drift{w.FromAccountID, TransfersName, fmt.Sprintf("transfer %s: %s", id, strings.Join(d, "; "))})
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			ds = append(ds, Drift{g.FromAccountID, TransfersName, fmt.Sprintf("transfer %s: row (%s) for a transfer the events do not hold", id, g.Status)})
		}
	}
	return ds
}
