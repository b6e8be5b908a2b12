package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
)

// DefaultIdleInTransactionTimeout is what ParseTailPoolConfig sets when given 0.
const DefaultIdleInTransactionTimeout = 10 * time.Second

// ParseTailPoolConfig parses url into a pool configuration for the tailing
// reader's connections to the events database. Each session gets
// idle_in_transaction_session_timeout (idleInTx, DefaultIdleInTransactionTimeout
// when 0): a session left idle in a transaction would hold every tailing
// reader on the server back, since pg_snapshot_xmin is cluster-wide.
func ParseTailPoolConfig(url string, idleInTx time.Duration) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("events database url: %w", err)
	}
	SetIdleInTransactionTimeout(cfg.ConnConfig, idleInTx)
	return cfg, nil
}

// SetIdleInTransactionTimeout makes every session opened with cfg end a
// transaction left idle for longer than d (DefaultIdleInTransactionTimeout when 0).
func SetIdleInTransactionTimeout(cfg *pgx.ConnConfig, d time.Duration) {
	if d <= 0 {
		d = DefaultIdleInTransactionTimeout
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(d.Milliseconds(), 10)
}

// Tailer reads the event store in the gap-safe global order.
type Tailer struct {
	pool *pgxpool.Pool
	uc   domain.UpcastContext
}

// NewTailer returns a Tailer over the events database; uc upcasts legacy events
// exactly as the aggregate's loader does.
func NewTailer(pool *pgxpool.Pool, uc domain.UpcastContext) *Tailer {
	if uc.DefaultCurrency.IsZero() {
		uc.DefaultCurrency = domain.FallbackCurrency
	}
	return &Tailer{pool: pool, uc: uc}
}

// Tailer returns a tailing reader over the store's pool with its UpcastContext.
func (s *EventStore) Tailer() *Tailer { return NewTailer(s.pool, s.uc) }

// tailQuery is one statement, so the snapshot bound and the rows come from one
// snapshot: pg_current_snapshot() is the statement's snapshot. Every transaction
// below xmin has ended, and a transaction that has not yet taken an id will take
// one at or above xmax, so the order below xmin is final. The first row (kind 0)
// carries xmin, xmax, the head and the highest stored transaction id; then the
// events. Reading takes no transaction id (pg_current_xact_id() would assign one
// on every poll), so xmax stands for "the server's next transaction id".
const tailQuery = `
WITH snap AS MATERIALIZED (
    SELECT pg_snapshot_xmin(s) AS xmin, pg_snapshot_xmax(s) AS xmax FROM pg_current_snapshot() AS s
)
SELECT 0 AS kind, snap.xmin, snap.xmax,
       (SELECT global_position FROM events ORDER BY global_position DESC LIMIT 1),
       (SELECT recorded_at FROM events ORDER BY global_position DESC LIMIT 1),
       (SELECT transaction_id FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1),
       NULL::uuid, NULL::int, NULL::uuid, NULL::text, NULL::smallint, NULL::jsonb, NULL::jsonb
FROM snap
UNION ALL
(SELECT 1, e.transaction_id, NULL::xid8, e.global_position, e.recorded_at, NULL::xid8,
        e.stream_id, e.version, e.event_id, e.event_type, e.schema_version, e.data, e.metadata
 FROM events e
 WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
   AND e.transaction_id < (SELECT xmin FROM snap)
 ORDER BY e.transaction_id, e.global_position
 LIMIT $3)
ORDER BY 1, 2, 4`

// Read returns up to limit events after the position after, in the gap-safe
// order, each upcast to the current shape. Errors: *eventlog.UpcastError naming the
// event's position when one cannot be read; *eventlog.CheckpointAheadError (matching
// eventlog.ErrRebuildRequired) when after, or a stored event, carries a transaction id the
// server has not reached, which only happens after a restore into a new cluster.
func (t *Tailer) Read(ctx context.Context, after eventlog.Position, limit int) (eventlog.TailBatch, error) {
	if limit <= 0 {
		return eventlog.TailBatch{}, fmt.Errorf("tail: limit must be positive, got %d", limit)
	}
	rows, err := t.pool.Query(ctx, tailQuery, after.TransactionID, after.GlobalPosition, limit)
	if err != nil {
		return eventlog.TailBatch{}, fmt.Errorf("tail after %s: %w", after, err)
	}
	defer rows.Close()
	var (
		b           eventlog.TailBatch
		xmax, topTx uint64
		headPos     *int64
		headAt      *time.Time
		sawMeta     bool
		raws        [][]byte
	)
	for rows.Next() {
		// Non-pointer pgtype values scan in binary without an allocation per
		// column; a uuid.UUID target would go through sql.Scanner's text form.
		var (
			kind                 int
			tx, metaXmax, metaTx pgtype.Uint64
			pos                  pgtype.Int8
			at                   pgtype.Timestamptz
			streamID, eventID    pgtype.UUID
			version              pgtype.Int4
			eventType            pgtype.Text
			schemaVersion        pgtype.Int2
			raw, metadata        []byte
		)
		if err := rows.Scan(&kind, &tx, &metaXmax, &pos, &at, &metaTx,
			&streamID, &version, &eventID, &eventType, &schemaVersion, &raw, &metadata); err != nil {
			return eventlog.TailBatch{}, fmt.Errorf("tail after %s: %w", after, err)
		}
		if kind == 0 {
			sawMeta = true
			b.Xmin, xmax = tx.Uint64, metaXmax.Uint64
			if pos.Valid {
				headPos, headAt = &pos.Int64, &at.Time
			}
			if metaTx.Valid {
				topTx = metaTx.Uint64
			}
			continue
		}
		b.Events = append(b.Events, eventlog.RecordedEvent{
			GlobalPosition: pos.Int64, TransactionID: tx.Uint64, StreamID: uuid.UUID(streamID.Bytes), Version: int(version.Int32),
			EventID: uuid.UUID(eventID.Bytes), EventType: eventType.String, SchemaVersion: int(schemaVersion.Int16),
			Metadata: metadata, RecordedAt: at.Time,
		})
		raws = append(raws, raw)
	}
	if err := rows.Err(); err != nil {
		return eventlog.TailBatch{}, fmt.Errorf("tail after %s: %w", after, err)
	}
	if !sawMeta {
		return eventlog.TailBatch{}, fmt.Errorf("tail after %s: no snapshot row", after)
	}
	if after.TransactionID >= xmax {
		return eventlog.TailBatch{}, &eventlog.CheckpointAheadError{Checkpoint: after, NextTransactionID: xmax}
	}
	if topTx >= xmax {
		return eventlog.TailBatch{}, &eventlog.CheckpointAheadError{Checkpoint: after, NextTransactionID: xmax, EventTransactionID: topTx}
	}
	if headPos != nil {
		b.Head = eventlog.Head{GlobalPosition: *headPos, RecordedAt: *headAt}
	}
	b.HeldBack = headPos != nil && topTx >= b.Xmin
	for i := range b.Events {
		if err := Decode(&b.Events[i], raws[i], t.uc); err != nil {
			return eventlog.TailBatch{}, err
		}
	}
	return b, nil
}

// Head returns the newest committed event, readable yet or not, as Read
// reports it: the projector measures its lag against it when a batch fails,
// and so reads no batch.
func (t *Tailer) Head(ctx context.Context) (eventlog.Head, error) {
	var (
		h   eventlog.Head
		pos *int64
		at  *time.Time
	)
	err := t.pool.QueryRow(ctx, `SELECT global_position, recorded_at FROM events ORDER BY global_position DESC LIMIT 1`).Scan(&pos, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("head of the event store: %w", err)
	}
	h.GlobalPosition, h.RecordedAt = *pos, *at
	return h, nil
}

// RecordedAt returns when the event at p was recorded, for lag measured from a
// checkpoint. ok is false when no event is at p (the zero Position included).
func (t *Tailer) RecordedAt(ctx context.Context, p eventlog.Position) (at time.Time, ok bool, err error) {
	if p.IsZero() {
		return time.Time{}, false, nil
	}
	err = t.pool.QueryRow(ctx, `SELECT recorded_at FROM events WHERE global_position = $1 AND transaction_id = $2::xid8`,
		p.GlobalPosition, p.TransactionID).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("recorded_at of %s: %w", p, err)
	}
	return at, true, nil
}

// HoldingTransactions lists the sessions whose transaction is xmin: the oldest
// running transaction that has written, which the reader waits for. Read-only
// transactions take no transaction id and hold no reader back. Other roles'
// queries show as "<insufficient privilege>" unless the reader's role may see
// them (pg_read_all_stats).
func (t *Tailer) HoldingTransactions(ctx context.Context, xmin uint64) ([]eventlog.HoldingTransaction, error) {
	// backend_xid is a 32-bit xid; compare the low 32 bits of xmin.
	rows, err := t.pool.Query(ctx, `
SELECT pid, COALESCE(datname, ''), COALESCE(application_name, ''), COALESCE(state, ''),
       COALESCE(EXTRACT(EPOCH FROM now() - xact_start), 0)::float8, COALESCE(query, '')
FROM pg_stat_activity
WHERE backend_xid::text = ($1::bigint % 4294967296)::text
ORDER BY xact_start`, int64(xmin))
	if err != nil {
		return nil, fmt.Errorf("sessions holding xmin %d: %w", xmin, err)
	}
	defer rows.Close()
	var out []eventlog.HoldingTransaction
	for rows.Next() {
		var (
			h   eventlog.HoldingTransaction
			age float64
		)
		if err := rows.Scan(&h.PID, &h.Database, &h.ApplicationName, &h.State, &age, &h.Query); err != nil {
			return nil, fmt.Errorf("sessions holding xmin %d: %w", xmin, err)
		}
		h.TransactionAge = time.Duration(age * float64(time.Second))
		out = append(out, h)
	}
	return out, rows.Err()
}
