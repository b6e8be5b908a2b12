package projection

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
	"github.com/evbank/bank/internal/readmodel"
)

// TransfersName is the name of the transfers projection.
const TransfersName = "transfers"

// transfersProjection projects transfers: one row per transfer, made pending
// by TransferSent and finished by TransferReceived (completed) or
// TransferReturned (returned). The gap-safe order puts TransferSent before
// the steps that finish it, since they are appended by later transactions,
// so a finishing step always finds its row pending, in the batch or in the
// table; anything else is an inconsistency and stops the batch.
type transfersProjection struct{}

// Transfers returns the transfers projection.
func Transfers() Projection { return transfersProjection{} }

func (transfersProjection) Name() string              { return TransfersName }
func (transfersProjection) Tables() []readmodel.Table { return []readmodel.Table{readmodel.Transfers} }

// NewCache keeps nothing: a batch never reads the table (a finishing step is
// an UPDATE that checks the row it finishes), so there is no state to cache.
func (transfersProjection) NewCache(int) Cache { return newStateCache[struct{}](0) }
func (transfersProjection) Bulk() BulkFold {
	return &transfersBulk{rows: map[uuid.UUID]*readmodel.Transfer{}}
}

// transferFinish is a finishing step: the status it sets, on which account.
type transferFinish struct {
	id      uuid.UUID
	account uuid.UUID // the stream of the step: the destination if completed, else the source
	status  string
	reason  *string
	at      time.Time
	pos     eventlog.Position
}

// transferStep is what e does to the transfers table: start a row
// (TransferSent), finish one, or nothing.
func transferStep(e eventlog.RecordedEvent) (start *readmodel.Transfer, finish *transferFinish) {
	switch ev := e.Event.(type) {
	case domain.TransferSent:
		return &readmodel.Transfer{
			TransferID: ev.TransferID, FromAccountID: e.StreamID, ToAccountID: ev.ToAccountID, AmountMinor: ev.AmountMinor,
			Currency: ev.Currency, Description: ev.Description, Status: readmodel.TransferPending, CreatedAt: e.RecordedAt,
		}, nil
	case domain.TransferReceived:
		return nil, &transferFinish{id: ev.TransferID, account: e.StreamID, status: readmodel.TransferCompleted, at: e.RecordedAt, pos: eventlog.PositionOf(e)}
	case domain.TransferReturned:
		reason := ev.Reason
		return nil, &transferFinish{id: ev.TransferID, account: e.StreamID, status: readmodel.TransferReturned, reason: &reason, at: e.RecordedAt, pos: eventlog.PositionOf(e)}
	}
	return nil, nil
}

// finishOn applies f to row, which must be pending and belong to f's account.
func (f *transferFinish) finishOn(row *readmodel.Transfer) error {
	if row.Status != readmodel.TransferPending {
		return fmt.Errorf("%w: projection %s: event at %s finishes transfer %s, which is %s already", ErrInconsistent, TransfersName, f.pos, f.id, row.Status)
	}
	if want := f.expectedAccount(row); want != f.account {
		return fmt.Errorf("%w: projection %s: event at %s on account %s finishes transfer %s of account %s", ErrInconsistent, TransfersName, f.pos, f.account, f.id, want)
	}
	row.Status, row.Reason = f.status, f.reason
	at := f.at
	row.CompletedAt = &at
	return nil
}

func (f *transferFinish) expectedAccount(row *readmodel.Transfer) uuid.UUID {
	if f.status == readmodel.TransferCompleted {
		return row.ToAccountID
	}
	return row.FromAccountID
}

func (f *transferFinish) unexpected(what string) error {
	return fmt.Errorf("%w: projection %s: event at %s: transfer %s %s", ErrInconsistent, TransfersName, f.pos, f.id, what)
}

// transferValues is r as a row of transfers, in the table's column order.
func transferValues(r *readmodel.Transfer, v []any) {
	v[0], v[1], v[2], v[3], v[4] = [16]byte(r.TransferID), [16]byte(r.FromAccountID), [16]byte(r.ToAccountID), r.AmountMinor, r.Currency
	v[5], v[6], v[7], v[8], v[9] = r.Description, r.Status, r.Reason, r.CreatedAt, r.CompletedAt
}

type transfersBatch struct {
	table  string
	events []eventlog.RecordedEvent
	rows   []readmodel.Transfer // started in this batch (and maybe finished too)
	finish []transferFinish     // of rows started in earlier batches
}

func (transfersProjection) Batch(events []eventlog.RecordedEvent, names TableNames, _ Cache) Batch {
	return &transfersBatch{table: names(readmodel.Transfers), events: events}
}

func (w *transfersBatch) QueueLoad(*pgx.Batch) {}
func (w *transfersBatch) Committed()           {}

func (w *transfersBatch) Fold() error {
	started := map[uuid.UUID]int{}   // index into w.rows
	finished := map[uuid.UUID]bool{} // of earlier batches' rows
	for _, e := range w.events {
		start, fin := transferStep(e)
		switch {
		case start != nil:
			if _, dup := started[start.TransferID]; dup {
				return fmt.Errorf("%w: projection %s: event at %s sends transfer %s a second time", ErrInconsistent, TransfersName, eventlog.PositionOf(e), start.TransferID)
			}
			started[start.TransferID] = len(w.rows)
			w.rows = append(w.rows, *start)
		case fin != nil:
			if i, ok := started[fin.id]; ok {
				if err := fin.finishOn(&w.rows[i]); err != nil {
					return err
				}
				continue
			}
			if finished[fin.id] {
				return fin.unexpected("is finished a second time")
			}
			finished[fin.id] = true
			w.finish = append(w.finish, *fin)
		}
	}
	return nil
}

func (w *transfersBatch) QueueWrite(b *pgx.Batch) {
	if n := len(w.rows); n > 0 {
		var (
			ids, froms, tos       = make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
			amounts               = make([]int64, n)
			curs, descs, statuses = make([]string, n), make([]string, n), make([]string, n)
			reasons               = make([]*string, n)
			created               = make([]time.Time, n)
			completed             = make([]*time.Time, n)
		)
		for i, r := range w.rows {
			ids[i], froms[i], tos[i], amounts[i] = r.TransferID, r.FromAccountID, r.ToAccountID, r.AmountMinor
			curs[i], descs[i], statuses[i], reasons[i] = r.Currency, r.Description, r.Status, r.Reason
			created[i], completed[i] = r.CreatedAt, r.CompletedAt
		}
		// A transfer sent twice violates the primary key: the batch fails loudly.
		b.Queue(`INSERT INTO `+ident(w.table)+` (`+readmodel.Transfers.ColumnList()+`)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[])`,
			ids, froms, tos, amounts, curs, descs, statuses, reasons, created, completed).Exec(expectRows(TransfersName, w.table, n))
	}
	if n := len(w.finish); n > 0 {
		var (
			ids, accounts = make([]uuid.UUID, n), make([]uuid.UUID, n)
			statuses      = make([]string, n)
			reasons       = make([]*string, n)
			at            = make([]time.Time, n)
		)
		for i, f := range w.finish {
			ids[i], accounts[i], statuses[i], reasons[i], at[i] = f.id, f.account, f.status, f.reason, f.at
		}
		// Only a pending row of the step's own account is finished; any other
		// (missing, finished already, another account's) leaves the count
		// short and fails the batch.
		b.Queue(`UPDATE `+ident(w.table)+` AS t
SET status = u.status, reason = u.reason, completed_at = u.completed_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[]) AS u(id, account, status, reason, completed_at)
WHERE t.transfer_id = u.id AND t.status = 'pending'
  AND CASE u.status WHEN 'completed' THEN t.to_account_id ELSE t.from_account_id END = u.account`,
			ids, accounts, statuses, reasons, at).Exec(expectRows(TransfersName, w.table, n))
	}
}

// transfersBulk holds every transfer in memory: one small row each, saved
// whole (rows are updated when they finish, so they cannot be streamed).
type transfersBulk struct {
	rows map[uuid.UUID]*readmodel.Transfer
}

func (f *transfersBulk) Apply(e eventlog.RecordedEvent, _ bool) error {
	start, fin := transferStep(e)
	switch {
	case start != nil:
		if _, dup := f.rows[start.TransferID]; dup {
			return fmt.Errorf("%w: projection %s: event at %s sends transfer %s a second time", ErrInconsistent, TransfersName, eventlog.PositionOf(e), start.TransferID)
		}
		f.rows[start.TransferID] = start
	case fin != nil:
		row := f.rows[fin.id]
		if row == nil {
			return fin.unexpected("was never sent")
		}
		return fin.finishOn(row)
	}
	return nil
}

func (f *transfersBulk) Stream() []Rows { return nil }

func (f *transfersBulk) Size() int { return len(f.rows) }

func (f *transfersBulk) Save(ctx context.Context, replace func(context.Context, Rows) error) error {
	rows := make([]*readmodel.Transfer, 0, len(f.rows))
	for _, r := range f.rows {
		rows = append(rows, r)
	}
	return replace(ctx, Rows{Table: readmodel.Transfers, N: len(rows), Fill: func(i int, v []any) { transferValues(rows[i], v) }})
}

func (f *transfersBulk) Restore(ctx context.Context, q Queryer, names TableNames) error {
	rows, err := q.Query(ctx, `SELECT `+readmodel.Transfers.ColumnList()+` FROM `+ident(names(readmodel.Transfers)))
	if err != nil {
		return err
	}
	return readmodel.ScanTransfers(rows, func(t readmodel.Transfer) error {
		f.rows[t.TransferID] = &t
		return nil
	})
}
