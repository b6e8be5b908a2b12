package projection

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
)

// TransactionHistoryName is the name of the transaction_history projection.
const TransactionHistoryName = "transaction_history"

// history projects transaction_history: one row per deposit, withdrawal or
// step of a transfer on the account it touched, with the balance after it. Rows are only ever added.
type history struct{}

// TransactionHistory returns the transaction_history projection.
func TransactionHistory() Projection { return history{} }

func (history) Name() string              { return TransactionHistoryName }
func (history) Tables() []readmodel.Table { return []readmodel.Table{readmodel.TransactionHistory} }
func (history) NewCache(limit int) Cache  { return newStateCache[streamState](limit) }
func (history) Bulk() BulkFold {
	return &historyBulk{states: map[uuid.UUID]*streamState{}, free: make(chan []readmodel.Transaction, 3)}
}

// historyTable is where the history folds onto: the balance after the
// account's latest row.
var historyTable = movementsTable{TransactionHistoryName, readmodel.TransactionHistory, "version", "balance_after_minor"}

// historyRow is the row a movement makes.
func historyRow(e eventlog.RecordedEvent, m movement) readmodel.Transaction {
	return readmodel.Transaction{
		EventID: e.EventID, AccountID: e.StreamID, Type: m.typ, AmountMinor: m.amount, Currency: m.currency,
		Description: m.description, BalanceAfterMinor: m.balanceAfter, Version: e.Version, OccurredAt: e.RecordedAt,
		TransferID: nullUUID(m.transfer), CounterpartyAccountID: nullUUID(m.counterparty),
	}
}

// nullUUID is id, or nil for the zero UUID (no transfer).
func nullUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// copyUUID is id as COPY encodes it: a [16]byte (see balanceValues), or nil.
func copyUUID(id *uuid.UUID) any {
	if id == nil {
		return nil
	}
	return [16]byte(*id)
}

// historyRows are rows for COPY, in the table's column order.
func historyRows(rows []readmodel.Transaction) Rows {
	return Rows{Table: readmodel.TransactionHistory, N: len(rows), Fill: func(i int, v []any) {
		r := &rows[i]
		v[0], v[1], v[2], v[3], v[4] = [16]byte(r.EventID), [16]byte(r.AccountID), r.Type, r.AmountMinor, r.Currency
		v[5], v[6], v[7], v[8] = r.Description, r.BalanceAfterMinor, int32(r.Version), r.OccurredAt
		v[9], v[10] = copyUUID(r.TransferID), copyUUID(r.CounterpartyAccountID)
	}}
}

type historyBatch struct {
	movementsBatch
	rows []readmodel.Transaction
}

func (history) Batch(events []eventlog.RecordedEvent, names TableNames, c Cache) Batch {
	return &historyBatch{movementsBatch: historyTable.batch(events, names, c)}
}

func (w *historyBatch) Fold() error {
	return w.fold(func(e eventlog.RecordedEvent, m movement) error {
		w.rows = append(w.rows, historyRow(e, m))
		return nil
	})
}

func (w *historyBatch) QueueWrite(b *pgx.Batch) {
	n := len(w.rows)
	if n == 0 {
		return
	}
	var (
		eventIDs, accountIDs   = make([]uuid.UUID, n), make([]uuid.UUID, n)
		types, curs, descs     = make([]string, n), make([]string, n), make([]string, n)
		amounts, balancesAfter = make([]int64, n), make([]int64, n)
		versions               = make([]int32, n)
		occurred               = make([]time.Time, n)
		transfers, parties     = make([]*uuid.UUID, n), make([]*uuid.UUID, n)
	)
	for i, r := range w.rows {
		eventIDs[i], accountIDs[i], types[i], curs[i], descs[i] = r.EventID, r.AccountID, r.Type, r.Currency, r.Description
		amounts[i], balancesAfter[i], versions[i], occurred[i] = r.AmountMinor, r.BalanceAfterMinor, int32(r.Version), r.OccurredAt
		transfers[i], parties[i] = r.TransferID, r.CounterpartyAccountID
	}
	b.Queue(`INSERT INTO `+ident(w.name)+` (`+readmodel.TransactionHistory.ColumnList()+`)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::int[], $9::timestamptz[], $10::uuid[], $11::uuid[])`,
		eventIDs, accountIDs, types, amounts, curs, descs, balancesAfter, versions, occurred, transfers, parties).Exec(expectRows(TransactionHistoryName, w.name, n))
}

// historyBulk holds each account's state; its rows are copied chunk by chunk
// (Stream), so that memory holds one chunk of them, not the whole history.
type historyBulk struct {
	states map[uuid.UUID]*streamState // pointers: one lookup per event
	rows   []readmodel.Transaction
	// free holds the slices of chunks written, for the next chunks: a
	// chunk's rows are megabytes, and making them anew each chunk made the
	// garbage collector the load's largest cost after decoding.
	free chan []readmodel.Transaction
}

func (f *historyBulk) Apply(e eventlog.RecordedEvent, emit bool) error {
	st := f.states[e.StreamID]
	if st == nil {
		st = &streamState{}
		f.states[e.StreamID] = st
	}
	if !emit && e.Version <= st.version {
		return nil // restored from the rows already copied: folded in
	}
	m, ok, err := st.next(TransactionHistoryName, e)
	if err != nil {
		return err
	}
	if ok && emit {
		f.rows = append(f.rows, historyRow(e, m))
	}
	return nil
}

func (f *historyBulk) Stream() []Rows {
	if len(f.rows) == 0 {
		return nil
	}
	rows := f.rows // the writer's until it releases them
	select {
	case f.rows = <-f.free:
	default:
		// The next chunk's rows are about as many: growing a slice row by
		// row costs more than folding them.
		f.rows = make([]readmodel.Transaction, 0, cap(rows))
	}
	r := historyRows(rows)
	r.Release = func() {
		select {
		case f.free <- rows[:0]:
		default:
		}
	}
	return []Rows{r}
}

func (f *historyBulk) Size() int { return len(f.states) }

// Save writes nothing: every row was streamed, and the state is read back
// from them.
func (f *historyBulk) Save(context.Context, func(context.Context, Rows) error) error { return nil }

func (f *historyBulk) Restore(ctx context.Context, q Queryer, names TableNames) error {
	states := streamStates{}
	if err := historyTable.restore(ctx, q, names, states); err != nil {
		return err
	}
	for id, st := range states {
		f.states[id] = &st
	}
	return nil
}
