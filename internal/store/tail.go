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
)

// Position is a place in the gap-safe global order of the event store: the
// transaction that wrote an event, then its global position. A reader that
// checkpoints the pair never skips an event that commits late (DESIGN §4).
// The zero Position is before every event.
type Position struct {
	TransactionID  uint64
	GlobalPosition int64
}

// PositionOf returns the position of e.
func PositionOf(e RecordedEvent) Position {
	return Position{TransactionID: e.TransactionID, GlobalPosition: e.GlobalPosition}
}

// Less reports whether p comes before q.
func (p Position) Less(q Position) bool {
	if p.TransactionID != q.TransactionID {
		return p.TransactionID < q.TransactionID
	}
	return p.GlobalPosition < q.GlobalPosition
}

// IsZero reports whether p is the start, before every event.
func (p Position) IsZero() bool { return p == Position{} }

func (p Position) String() string {
	return "tx " + strconv.FormatUint(p.TransactionID, 10) + " position " + strconv.FormatInt(p.GlobalPosition, 10)
}

// Head is the newest event visible to a read: the highest global position and
// when it was recorded. Both are zero for an empty store.
type Head struct {
	GlobalPosition int64
	RecordedAt     time.Time
}

// TailBatch is one read of the tailing reader.
type TailBatch struct {
	// Events follow the position read after, in (transaction id, global position)
	// order, upcast to the current shape. Every event below Xmin is in it or before
	// it, so nothing can commit later in the part of the order it covers.
	Events []RecordedEvent
	// Head is the newest committed event, readable yet or not; lag is measured against it.
	Head Head
	// Xmin is the oldest transaction still running when the read was made: the
	// reader does not go past it. It is cluster-wide, so a long transaction in any
	// database of the server holds every reader back.
	Xmin uint64
	// HeldBack reports committed events at or above Xmin: they wait for an older
	// transaction to end. A reader held back for long points at a long transaction.
	HeldBack bool
}

// ErrRebuildRequired is matched (errors.Is) by a CheckpointAheadError: the read
// model cannot be brought up to date by tailing and must be rebuilt.
var ErrRebuildRequired = errors.New("the read model must be rebuilt from the event store: run `projector rebuild`")

// CheckpointAheadError reports transaction ids from another cluster: after a
// dump and restore into a new cluster, transaction ids start again, below the
// ones a checkpoint (or the restored events) carry. Waiting would never end, or
// worse, skip every event written until the counter catches up.
type CheckpointAheadError struct {
	// Checkpoint is the position the reader was asked to read after.
	Checkpoint Position
	// NextTransactionID is the server's first unassigned transaction id.
	NextTransactionID uint64
	// EventTransactionID, when not zero, is the highest transaction id stored
	// in events, at or above NextTransactionID.
	EventTransactionID uint64
}

func (e *CheckpointAheadError) Error() string {
	if e.EventTransactionID != 0 {
		return fmt.Sprintf("the events table holds transaction ids up to %d but the server has only reached %d: "+
			"the event store was restored into another cluster (dump/restore), so the transaction-id order the tailing reader relies on is broken; "+
			"advance the server's transaction id past %d (pg_resetwal --next-transaction-id/--epoch while it is stopped), then run `projector rebuild`",
			e.EventTransactionID, e.NextTransactionID, e.EventTransactionID)
	}
	return fmt.Sprintf("checkpoint (%s) is ahead of the server's next transaction id %d: "+
		"the event store was restored into another cluster (dump/restore) and transaction ids started again; "+
		"tailing from this checkpoint would skip events, so run `projector rebuild`",
		e.Checkpoint, e.NextTransactionID)
}

// Is makes errors.Is(err, ErrRebuildRequired) true.
func (e *CheckpointAheadError) Is(target error) bool { return target == ErrRebuildRequired }

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
		uc.DefaultCurrency = domain.MustCurrency("USD")
	}
	return &Tailer{pool: pool, uc: uc}
}

// Tailer returns a tailing reader over the store's pool with its UpcastContext.
func (s *EventStore) Tailer() *Tailer { return NewTailer(s.pool, s.uc) }

// UpcastContext is the context the Tailer upcasts with.
func (t *Tailer) UpcastContext() domain.UpcastContext { return t.uc }

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
// order, each upcast to the current shape. Errors: *UpcastError naming the
// event's position when one cannot be read; *CheckpointAheadError (matching
// ErrRebuildRequired) when after, or a stored event, carries a transaction id the
// server has not reached, which only happens after a restore into a new cluster.
func (t *Tailer) Read(ctx context.Context, after Position, limit int) (TailBatch, error) {
	if limit <= 0 {
		return TailBatch{}, fmt.Errorf("tail: limit must be positive, got %d", limit)
	}
	rows, err := t.pool.Query(ctx, tailQuery, after.TransactionID, after.GlobalPosition, limit)
	if err != nil {
		return TailBatch{}, fmt.Errorf("tail after %s: %w", after, err)
	}
	defer rows.Close()
	var (
		b           TailBatch
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
			return TailBatch{}, fmt.Errorf("tail after %s: %w", after, err)
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
		b.Events = append(b.Events, RecordedEvent{
			GlobalPosition: pos.Int64, TransactionID: tx.Uint64, StreamID: uuid.UUID(streamID.Bytes), Version: int(version.Int32),
			EventID: uuid.UUID(eventID.Bytes), EventType: eventType.String, SchemaVersion: int(schemaVersion.Int16),
			Metadata: metadata, RecordedAt: at.Time,
		})
		raws = append(raws, raw)
	}
	if err := rows.Err(); err != nil {
		return TailBatch{}, fmt.Errorf("tail after %s: %w", after, err)
	}
	if !sawMeta {
		return TailBatch{}, fmt.Errorf("tail after %s: no snapshot row", after)
	}
	if after.TransactionID >= xmax {
		return TailBatch{}, &CheckpointAheadError{Checkpoint: after, NextTransactionID: xmax}
	}
	if topTx >= xmax {
		return TailBatch{}, &CheckpointAheadError{Checkpoint: after, NextTransactionID: xmax, EventTransactionID: topTx}
	}
	if headPos != nil {
		b.Head = Head{GlobalPosition: *headPos, RecordedAt: *headAt}
	}
	b.HeldBack = headPos != nil && topTx >= b.Xmin
	for i := range b.Events {
		if err := Decode(&b.Events[i], raws[i], t.uc); err != nil {
			return TailBatch{}, err
		}
	}
	return b, nil
}

// Head returns the newest committed event, readable yet or not, as Read
// reports it: the projector measures its lag against it when a batch fails,
// and so reads no batch.
func (t *Tailer) Head(ctx context.Context) (Head, error) {
	var (
		h   Head
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
func (t *Tailer) RecordedAt(ctx context.Context, p Position) (at time.Time, ok bool, err error) {
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

// HoldingTransaction describes a session whose transaction holds the tailing
// reader back, for a log line that lets an operator find it.
type HoldingTransaction struct {
	PID             int
	Database        string
	ApplicationName string
	State           string
	TransactionAge  time.Duration
	Query           string
}

// HoldingTransactions lists the sessions whose transaction is xmin: the oldest
// running transaction that has written, which the reader waits for. Read-only
// transactions take no transaction id and hold no reader back. Other roles'
// queries show as "<insufficient privilege>" unless the reader's role may see
// them (pg_read_all_stats).
func (t *Tailer) HoldingTransactions(ctx context.Context, xmin uint64) ([]HoldingTransaction, error) {
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
	var out []HoldingTransaction
	for rows.Next() {
		var (
			h   HoldingTransaction
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
