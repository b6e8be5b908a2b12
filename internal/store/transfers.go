package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/dberr"
)

// stepEvent is the INSERT of one transfer step's event, fed by the saga CTE
// before it: no saga row, no event (appendSQL's parameters $1-$8). The
// statement answers the saga row's times, so the caller needs no read back.
const stepEvent = `,
step AS (
    INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata)
    SELECT $1::uuid, $2::text, $5::int, $6::uuid, $7::text, $3::smallint, $8::jsonb, $4::jsonb FROM saga
)
SELECT created_at, finished_at FROM saga`

// beginTransferSQL inserts the saga and step 1 in one statement: a taken
// transfer id fails the statement whole (transfer_sagas_pkey).
const beginTransferSQL = `
WITH saga AS (
    INSERT INTO transfer_sagas (transfer_id, from_account_id, to_account_id, amount_minor, currency, description,
                                from_owner, to_owner, principal, request_hash)
    VALUES ($9, $1, $10, $11, $12, $13, $14, $15, $16, $17)
    RETURNING transfer_id, created_at, finished_at
)` + stepEvent

// finishTransferSQL finishes a pending saga and appends its step in one
// statement. The UPDATE locks the saga row, so of two processes finishing one
// transfer the second waits, then finds it no longer pending and appends
// nothing: each step happens once.
const finishTransferSQL = `
WITH saga AS (
    UPDATE transfer_sagas SET status = $9, reason = NULLIF($10, ''), finished_at = now()
    WHERE transfer_id = $11 AND status = 'pending'
    RETURNING transfer_id, created_at, finished_at
)` + stepEvent

// BeginTransfer implements command.EventStore.
func (s *EventStore) BeginTransfer(ctx context.Context, ap command.Append, saga command.TransferSaga) (createdAt time.Time, err error) {
	defer dberr.Mark(&err)
	args, err := stepArgs(ap)
	if err != nil {
		return createdAt, err
	}
	args = append(args, pgUUID(saga.ID), pgUUID(saga.To), saga.AmountMinor, saga.Currency, saga.Description,
		saga.FromOwner, saga.ToOwner, saga.Principal, saga.RequestHash)
	var finished *time.Time
	if err := s.pool.QueryRow(ctx, beginTransferSQL, args...).Scan(&createdAt, &finished); err != nil {
		return createdAt, mapAppendError(ap.Account.ID(), err)
	}
	s.maybeSnapshot(ctx, ap.Account, ap.ExpectedVersion)
	return createdAt, nil
}

// FinishTransfer implements command.EventStore.
func (s *EventStore) FinishTransfer(ctx context.Context, ap command.Append, id uuid.UUID, status command.TransferStatus, reason string) (finishedAt time.Time, applied bool, err error) {
	defer dberr.Mark(&err)
	args, err := stepArgs(ap)
	if err != nil {
		return finishedAt, false, err
	}
	args = append(args, string(status), reason, pgUUID(id))
	var created time.Time
	err = s.pool.QueryRow(ctx, finishTransferSQL, args...).Scan(&created, &finishedAt)
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// No saga row was pending: another process finished it first.
		return finishedAt, false, nil
	case errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "events_event_id_key":
		// The step's derived event id is taken: it happened already. The
		// saga row says so too; this is the second guard.
		return finishedAt, false, nil
	case err != nil:
		return finishedAt, false, mapAppendError(ap.Account.ID(), err)
	}
	s.maybeSnapshot(ctx, ap.Account, ap.ExpectedVersion)
	return finishedAt, true, nil
}

// stepArgs are a transfer step's event parameters: one event, always.
func stepArgs(ap command.Append) ([]any, error) {
	if n := len(ap.Account.Uncommitted()); n != 1 {
		return nil, fmt.Errorf("transfer step: %d events, want 1", n)
	}
	return eventArgs(ap, 8)
}

const sagaColumns = `transfer_id, from_account_id, to_account_id, amount_minor, currency, description, from_owner, to_owner, principal,
request_hash, status, COALESCE(reason, ''), created_at, finished_at`

func scanSaga(row pgx.Row) (command.TransferSaga, error) {
	var (
		t        command.TransferSaga
		status   string
		finished *time.Time
	)
	err := row.Scan(&t.ID, &t.From, &t.To, &t.AmountMinor, &t.Currency, &t.Description, &t.FromOwner, &t.ToOwner, &t.Principal,
		&t.RequestHash, &status, &t.Reason, &t.CreatedAt, &finished)
	t.Status = command.TransferStatus(status)
	if finished != nil {
		t.FinishedAt = *finished
	}
	return t, err
}

// Transfer implements command.EventStore.
func (s *EventStore) Transfer(ctx context.Context, id uuid.UUID) (_ command.TransferSaga, err error) {
	defer dberr.Mark(&err)
	t, err := scanSaga(s.pool.QueryRow(ctx, `SELECT `+sagaColumns+` FROM transfer_sagas WHERE transfer_id = $1`, pgUUID(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, command.ErrTransferNotFound
	}
	if err != nil {
		return t, fmt.Errorf("transfer %s: %w", id, err)
	}
	return t, nil
}

// PendingTransfers implements command.EventStore.
func (s *EventStore) PendingTransfers(ctx context.Context, olderThan time.Duration, limit int) (_ []command.TransferSaga, err error) {
	defer dberr.Mark(&err)
	rows, err := s.pool.Query(ctx, `
SELECT `+sagaColumns+` FROM transfer_sagas
WHERE status = 'pending' AND created_at < now() - $1::interval
ORDER BY created_at LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, fmt.Errorf("pending transfers: %w", err)
	}
	defer rows.Close()
	var out []command.TransferSaga
	for rows.Next() {
		t, err := scanSaga(rows)
		if err != nil {
			return nil, fmt.Errorf("pending transfers: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TransferBacklog is the number of pending transfers and the age of the
// oldest, for the metrics.
func (s *EventStore) TransferBacklog(ctx context.Context) (pending int64, oldest time.Duration, err error) {
	defer dberr.Mark(&err)
	var age *float64
	err = s.pool.QueryRow(ctx, `
SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM transfer_sagas WHERE status = 'pending'`).Scan(&pending, &age)
	if err != nil {
		return 0, 0, fmt.Errorf("transfer backlog: %w", err)
	}
	if age != nil {
		oldest = time.Duration(*age * float64(time.Second))
	}
	return pending, oldest, nil
}
