package projection

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
)

// DailySummariesName is the name of the daily_summaries projection.
const DailySummariesName = "daily_summaries"

// daily projects daily_summaries: per account and UTC day of recorded_at,
// counts and totals of deposits, withdrawals and transfers in and out (a
// returned transfer is one in) and the closing balance.
type daily struct{}

// DailySummaries returns the daily_summaries projection.
func DailySummaries() Projection { return daily{} }

func (daily) Name() string              { return DailySummariesName }
func (daily) Tables() []readmodel.Table { return []readmodel.Table{readmodel.DailySummaries} }
func (daily) NewCache(limit int) Cache  { return newStateCache[streamState](limit) }
func (daily) Bulk() BulkFold {
	return &dailyBulk{accounts: map[uuid.UUID]*dailyAccount{}, days: map[bulkDay]*readmodel.DailySummary{}}
}

// dailyTable is where the daily summaries fold onto: the closing balance of
// the account's latest movement by version, not by day, so that a clock
// stepping back does not make an older balance look current. The primary
// key narrows the scan to the account's days.
var dailyTable = movementsTable{DailySummariesName, readmodel.DailySummaries, "last_version", "closing_balance_minor"}

// addToDay counts m, made by e, into its day d. Errors: a total past what
// domain.Total holds, which no real day reaches.
func addToDay(d *readmodel.DailySummary, e eventlog.RecordedEvent, m movement) error {
	d.Currency = m.currency
	d.ClosingBalanceMinor, d.LastVersion = m.balanceAfter, e.Version
	var (
		count *int
		total *domain.Total
	)
	switch m.typ {
	case readmodel.TypeDeposit:
		count, total = &d.DepositsCount, &d.DepositsTotalMinor
	case readmodel.TypeWithdrawal:
		count, total = &d.WithdrawalsCount, &d.WithdrawalsTotalMinor
	case readmodel.TypeTransferOut:
		count, total = &d.TransfersOutCount, &d.TransfersOutTotalMinor
	default: // transfer_in, transfer_returned: the money came (back) in
		count, total = &d.TransfersInCount, &d.TransfersInTotalMinor
	}
	*count++
	err := total.Add(m.amount)
	if err != nil {
		return fmt.Errorf("projection %s: event at %s of stream %s: %w", DailySummariesName, eventlog.PositionOf(e), e.StreamID, err)
	}
	return nil
}

// dayOf is the key of e's day.
func dayOf(e eventlog.RecordedEvent) readmodel.DayKey {
	return readmodel.DayKey{AccountID: e.StreamID, Day: readmodel.UTCDay(e.RecordedAt)}
}

// numeric is t as COPY encodes it into a numeric column: an int64 while it
// fits, which costs no allocation, else the exact big integer.
func numeric(t domain.Total) any {
	if n, ok := t.Int64(); ok {
		return n
	}
	return pgtype.Numeric{Int: t.Big(), Valid: true}
}

type dailyBatch struct {
	movementsBatch
	rows []readmodel.DailySummary // the batch's movements per day, added to the table's
}

func (daily) Batch(events []eventlog.RecordedEvent, names TableNames, c Cache) Batch {
	return &dailyBatch{movementsBatch: dailyTable.batch(events, names, c)}
}

func (w *dailyBatch) Fold() error {
	days := map[readmodel.DayKey]int{} // index into w.rows
	return w.fold(func(e eventlog.RecordedEvent, m movement) error {
		key := dayOf(e)
		i, seen := days[key]
		if !seen {
			i = len(w.rows)
			days[key] = i
			w.rows = append(w.rows, readmodel.DailySummary{AccountID: key.AccountID, Day: key.Day})
		}
		return addToDay(&w.rows[i], e, m)
	})
}

func (w *dailyBatch) QueueWrite(b *pgx.Batch) {
	n := len(w.rows)
	if n == 0 {
		return
	}
	var (
		ids                 = make([]uuid.UUID, n)
		days                = make([]time.Time, n)
		curs                = make([]string, n)
		depCounts, wdCounts = make([]int32, n), make([]int32, n)
		depTotals, wdTotals = make([]string, n), make([]string, n)
		closing             = make([]int64, n)
		lastVersions        = make([]int32, n)
		inCounts, outCounts = make([]int32, n), make([]int32, n)
		inTotals, outTotals = make([]string, n), make([]string, n)
	)
	for i, r := range w.rows {
		ids[i], days[i], curs[i] = r.AccountID, r.Day, r.Currency
		depCounts[i], depTotals[i] = int32(r.DepositsCount), r.DepositsTotalMinor.String()
		wdCounts[i], wdTotals[i] = int32(r.WithdrawalsCount), r.WithdrawalsTotalMinor.String()
		closing[i], lastVersions[i] = r.ClosingBalanceMinor, int32(r.LastVersion)
		inCounts[i], inTotals[i] = int32(r.TransfersInCount), r.TransfersInTotalMinor.String()
		outCounts[i], outTotals[i] = int32(r.TransfersOutCount), r.TransfersOutTotalMinor.String()
	}
	// A day already in the table gets the batch's movements added. Every event of
	// the batch is newer than any the table holds for the account (Fold checked
	// it), so the batch's closing balance is the day's; the WHERE makes a row
	// that would go backwards count as not written. Totals travel as decimal
	// text and are added as numeric: a batch's or a day's sum may pass 2^63.
	b.Queue(`INSERT INTO `+ident(w.name)+` AS d (`+readmodel.DailySummaries.ColumnList()+`)
SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::int[], $5::text[]::numeric[], $6::int[], $7::text[]::numeric[], $8::bigint[], $9::int[],
                     $10::int[], $11::text[]::numeric[], $12::int[], $13::text[]::numeric[])
ON CONFLICT (account_id, day) DO UPDATE SET
    currency = excluded.currency,
    deposits_count = d.deposits_count + excluded.deposits_count,
    deposits_total_minor = d.deposits_total_minor + excluded.deposits_total_minor,
    withdrawals_count = d.withdrawals_count + excluded.withdrawals_count,
    withdrawals_total_minor = d.withdrawals_total_minor + excluded.withdrawals_total_minor,
    closing_balance_minor = excluded.closing_balance_minor,
    last_version = excluded.last_version,
    transfers_in_count = d.transfers_in_count + excluded.transfers_in_count,
    transfers_in_total_minor = d.transfers_in_total_minor + excluded.transfers_in_total_minor,
    transfers_out_count = d.transfers_out_count + excluded.transfers_out_count,
    transfers_out_total_minor = d.transfers_out_total_minor + excluded.transfers_out_total_minor
WHERE d.last_version < excluded.last_version`,
		ids, days, curs, depCounts, depTotals, wdCounts, wdTotals, closing, lastVersions, inCounts, inTotals, outCounts, outTotals).Exec(expectRows(DailySummariesName, w.name, n))
}

// dailyBulk holds each account's state and every account's days. It is
// looked up once per event: each account remembers the row of the day its
// last movement fell on, and the days map is asked only when the day changes.
type dailyBulk struct {
	accounts map[uuid.UUID]*dailyAccount
	days     map[bulkDay]*readmodel.DailySummary
}

type dailyAccount struct {
	st  streamState
	day bulkDay
	row *readmodel.DailySummary // of day; nil before the first movement
}

// bulkDay keys a day in memory: smaller and cheaper to hash than a
// readmodel.DayKey, which the fold looks up once per movement.
type bulkDay struct {
	id  uuid.UUID
	day int64 // days since 1970-01-01, UTC
}

func bulkDayOf(e eventlog.RecordedEvent) bulkDay {
	sec := e.RecordedAt.Unix()
	day := sec / 86400
	if sec%86400 < 0 {
		day-- // floor, before 1970
	}
	return bulkDay{id: e.StreamID, day: day}
}

func (f *dailyBulk) Apply(e eventlog.RecordedEvent, _ bool) error {
	a := f.accounts[e.StreamID]
	if a == nil {
		a = &dailyAccount{}
		f.accounts[e.StreamID] = a
	}
	m, ok, err := a.st.next(DailySummariesName, e)
	if err != nil || !ok {
		return err
	}
	if key := bulkDayOf(e); a.row == nil || key != a.day {
		d := f.days[key]
		if d == nil {
			d = &readmodel.DailySummary{AccountID: e.StreamID, Day: readmodel.UTCDay(e.RecordedAt)}
			f.days[key] = d
		}
		a.day, a.row = key, d
	}
	return addToDay(a.row, e, m)
}

func (f *dailyBulk) Stream() []Rows { return nil }

func (f *dailyBulk) Size() int { return len(f.days) }

func (f *dailyBulk) Save(ctx context.Context, replace func(context.Context, Rows) error) error {
	days := make([]*readmodel.DailySummary, 0, len(f.days))
	for _, d := range f.days {
		days = append(days, d)
	}
	return replace(ctx, Rows{Table: readmodel.DailySummaries, N: len(days), Fill: func(i int, v []any) {
		d := days[i]
		v[0], v[1], v[2], v[3], v[4] = [16]byte(d.AccountID), d.Day, d.Currency, int32(d.DepositsCount), numeric(d.DepositsTotalMinor)
		v[5], v[6], v[7], v[8] = int32(d.WithdrawalsCount), numeric(d.WithdrawalsTotalMinor), d.ClosingBalanceMinor, int32(d.LastVersion)
		v[9], v[10], v[11], v[12] = int32(d.TransfersInCount), numeric(d.TransfersInTotalMinor), int32(d.TransfersOutCount), numeric(d.TransfersOutTotalMinor)
	}})
}

func (f *dailyBulk) Restore(ctx context.Context, q Queryer, names TableNames) error {
	states := streamStates{}
	if err := dailyTable.restore(ctx, q, names, states); err != nil {
		return err
	}
	for id, st := range states {
		f.accounts[id] = &dailyAccount{st: st}
	}
	rows, err := q.Query(ctx, `SELECT `+readmodel.DailySummariesSelect+` FROM `+ident(names(readmodel.DailySummaries)))
	if err != nil {
		return err
	}
	return readmodel.ScanDailySummaries(rows, func(d readmodel.DailySummary) error {
		f.days[bulkDay{id: d.AccountID, day: d.Day.Unix() / 86400}] = &d
		return nil
	})
}
