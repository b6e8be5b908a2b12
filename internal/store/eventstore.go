// Package store is the PostgreSQL side of the service: the append-only event
// store, snapshots, idempotency records, the gap-safe tailing reader and the
// migrations runner. pgx errors are mapped to the command port's errors here.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
)

// EventStore is the pgx implementation of command.EventStore.
type EventStore struct {
	pool          *pgxpool.Pool
	uc            domain.UpcastContext
	snapshotEvery int
	log           zerolog.Logger
}

// Options configure an EventStore.
type Options struct {
	// DefaultCurrency is given to legacy (schema version 1) events, which had none.
	DefaultCurrency domain.Currency
	// SnapshotEvery writes a snapshot each time a stream's version crosses a
	// multiple of it; 0 turns snapshots off.
	SnapshotEvery int
	Log           zerolog.Logger
}

// NewEventStore returns an EventStore over pool.
func NewEventStore(pool *pgxpool.Pool, opts Options) *EventStore {
	cur := opts.DefaultCurrency
	if cur.IsZero() {
		cur = domain.FallbackCurrency
	}
	return &EventStore{pool: pool, uc: domain.UpcastContext{DefaultCurrency: cur}, snapshotEvery: opts.SnapshotEvery, log: opts.Log}
}

var _ command.EventStore = (*EventStore)(nil)

// Decode upcasts and decodes raw stored data into r.Data and r.Event.
func Decode(r *eventlog.RecordedEvent, raw []byte, uc domain.UpcastContext) error {
	data, err := domain.Upcast(r.EventType, r.SchemaVersion, raw, uc)
	if err == nil {
		r.Event, err = domain.DecodeEvent(r.EventType, domain.CurrentSchemaVersion, data, uc)
	}
	if err != nil {
		return &eventlog.UpcastError{GlobalPosition: r.GlobalPosition, StreamID: r.StreamID, Version: r.Version, Err: err}
	}
	r.Data = data
	return nil
}

// Load implements command.EventStore: the latest snapshot of the current state
// version, then the events after it. Plain statements, no transaction: reading
// takes no transaction id, which the tailing reader's ordering relies on.
func (s *EventStore) Load(ctx context.Context, id uuid.UUID) (_ *domain.Account, err error) {
	defer dberr.Mark(&err)
	return s.load(ctx, id, time.Time{})
}

// LoadAsOf folds the stream of id up to the events recorded at or before asOf,
// using a snapshot only when its last event is that old. It returns
// domain.ErrAccountNotFound when the account did not exist yet.
func (s *EventStore) LoadAsOf(ctx context.Context, id uuid.UUID, asOf time.Time) (_ *domain.Account, err error) {
	defer dberr.Mark(&err)
	a, err := s.load(ctx, id, asOf)
	if err != nil {
		return nil, err
	}
	if !a.Exists() {
		return nil, domain.ErrAccountNotFound
	}
	return a, nil
}

// loadQuery reads the snapshot and the tail in one round trip: the first row,
// if any, is the snapshot (version from the snapshot, event columns null).
const loadQuery = `
WITH snap AS (
    SELECT version, state
    FROM snapshots
    WHERE stream_id = $1 AND state_version = $2 AND ($3::timestamptz IS NULL OR recorded_at <= $3)
    ORDER BY version DESC
    LIMIT 1
)
SELECT 0 AS kind, s.version, s.state, NULL::bigint, NULL::text, NULL::smallint, NULL::timestamptz
FROM snap s
UNION ALL
SELECT 1, e.version, e.data, e.global_position, e.event_type, e.schema_version, e.recorded_at
FROM events e
WHERE e.stream_id = $1
  AND e.version > COALESCE((SELECT version FROM snap), 0)
  AND ($3::timestamptz IS NULL OR e.recorded_at <= $3)
ORDER BY 1, 2`

// LoadQuery returns the statement Load runs ($1 the stream id, $2 the snapshot
// state version, $3 an as-of instant or NULL), so that a benchmark can run the
// very same SQL without the service around it.
func LoadQuery() string { return loadQuery }

func (s *EventStore) load(ctx context.Context, id uuid.UUID, asOf time.Time) (*domain.Account, error) {
	var asOfArg any
	if !asOf.IsZero() {
		asOfArg = asOf
	}
	a, err := s.loadOnce(ctx, id, asOfArg, true)
	var bad *badSnapshotError
	if errors.As(err, &bad) {
		// An unreadable snapshot is only a lost shortcut: replay the whole stream.
		s.log.Warn().Err(err).Str("stream_id", id.String()).Msg("ignoring unreadable snapshot")
		return s.loadOnce(ctx, id, asOfArg, false)
	}
	return a, err
}

type badSnapshotError struct{ err error }

func (e *badSnapshotError) Error() string { return "snapshot: " + e.err.Error() }

func (s *EventStore) loadOnce(ctx context.Context, id uuid.UUID, asOf any, useSnapshot bool) (*domain.Account, error) {
	stateVersion := domain.SnapshotStateVersion
	if !useSnapshot {
		stateVersion = -1 // matches no snapshot
	}
	rows, err := s.pool.Query(ctx, loadQuery, pgUUID(id), stateVersion, asOf)
	if err != nil {
		return nil, fmt.Errorf("load stream %s: %w", id, err)
	}
	defer rows.Close()
	a := domain.NewAccount(id)
	for rows.Next() {
		var (
			kind, version int
			raw           []byte
			pos           *int64
			eventType     *string
			schemaVersion *int16
			recordedAt    *time.Time
		)
		if err := rows.Scan(&kind, &version, &raw, &pos, &eventType, &schemaVersion, &recordedAt); err != nil {
			return nil, fmt.Errorf("load stream %s: %w", id, err)
		}
		if kind == 0 {
			var st domain.AccountState
			if err := json.Unmarshal(raw, &st); err != nil {
				return nil, &badSnapshotError{err}
			}
			snap, err := domain.AccountFromState(st)
			if err != nil || st.Version != version || st.ID != id {
				return nil, &badSnapshotError{fmt.Errorf("stream %s version %d: state does not fit: %w", id, version, errors.Join(err, domain.ErrInvalid))}
			}
			a = snap
			continue
		}
		if version != a.Version()+1 {
			return nil, fmt.Errorf("load stream %s: version %d follows %d", id, version, a.Version())
		}
		r := eventlog.RecordedEvent{GlobalPosition: *pos, StreamID: id, Version: version, EventType: *eventType, SchemaVersion: int(*schemaVersion)}
		if err := Decode(&r, raw, s.uc); err != nil {
			return nil, err
		}
		a.Apply(r.Event, *recordedAt)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load stream %s: %w", id, err)
	}
	return a, nil
}

// appendSQL is the statement that inserts nEvents events and, when keep is
// set, the idempotency record: one statement, so both commit or neither does,
// in one round trip. Versions come from ExpectedVersion:
// unique(stream_id, version) is the guard against a racing writer, not any
// lock. A plain multi-row INSERT with scalar parameters: cheaper to encode
// and to execute than unnesting arrays (a deposit is one row).
//
// Parameters, when there are events: $1 stream id, $2 stream type, $3 schema
// version, $4 metadata, then per event its version, event id, type and data;
// then, when kept, the record's method, path, key, request hash, status,
// headers and body (alone: $1..$7).
func appendSQL(nEvents int, keep bool) string {
	if nEvents <= maxCachedAppendSQL {
		i := nEvents * 2
		if keep {
			i++
		}
		if q := appendSQLCache[i].Load(); q != nil {
			return *q
		}
		q := buildAppendSQL(nEvents, keep)
		appendSQLCache[i].Store(&q)
		return q
	}
	return buildAppendSQL(nEvents, keep)
}

const maxCachedAppendSQL = 8

var appendSQLCache [2*maxCachedAppendSQL + 2]atomic.Pointer[string]

func buildAppendSQL(nEvents int, keep bool) string {
	var b strings.Builder
	next := 1
	if nEvents > 0 {
		next = 5
	}
	param := func() string { next++; return "$" + strconv.Itoa(next-1) }
	if nEvents > 0 {
		if keep {
			b.WriteString("WITH new_events AS (\n")
		}
		b.WriteString("INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata) VALUES ")
		for i := range nEvents {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "($1, $2, %s, %s, %s, $3, %s, $4)", param(), param(), param(), param())
		}
		if keep {
			b.WriteString("\n)\n")
		}
	}
	if keep {
		b.WriteString("INSERT INTO idempotency_keys (principal, method, path, idempotency_key, request_hash, answer) VALUES (")
		for i := range 6 {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(param())
		}
		b.WriteString(")")
	}
	return b.String()
}

// Append implements command.EventStore.
func (s *EventStore) Append(ctx context.Context, ap command.Append) (err error) {
	defer dberr.Mark(&err)
	events := ap.Account.Uncommitted()
	keep := ap.Idempotency != nil && ap.Answer != nil
	if len(events) == 0 && !keep {
		return nil
	}
	args, err := eventArgs(ap, 6)
	if err != nil {
		return err
	}
	if keep {
		args = append(args, ap.Idempotency.Principal, ap.Idempotency.Method, ap.Idempotency.Path, ap.Idempotency.Key, ap.Fingerprint, []byte(ap.Answer))
	}
	if _, err := s.pool.Exec(ctx, appendSQL(len(events), keep), args...); err != nil {
		return mapAppendError(ap.Account.ID(), err)
	}
	s.maybeSnapshot(ctx, ap.Account, ap.ExpectedVersion)
	return nil
}

// appendGroupSQL inserts the events of several commands, each row with its
// command's metadata, and their kept answers, in one statement. Arrays keep
// it one statement shape whatever the group's size (a multi-row VALUES per
// size would fill every connection's statement cache). ORDER BY: the
// identity values, taken after the sort, follow the versions, as the
// projector's contiguity check expects.
const appendGroupSQL = `
WITH new_events AS (
    INSERT INTO events (stream_id, stream_type, version, event_id, event_type, schema_version, data, metadata)
    SELECT $1, $2, e.version, e.event_id, e.event_type, $3, e.data, e.metadata
    FROM unnest($4::int[], $5::uuid[], $6::text[], $7::jsonb[], $8::jsonb[]) AS e(version, event_id, event_type, data, metadata)
    ORDER BY e.version
)
INSERT INTO idempotency_keys (principal, method, path, idempotency_key, request_hash, answer)
SELECT * FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $14::bytea[])`

// AppendGroup implements command.EventStore.
func (s *EventStore) AppendGroup(ctx context.Context, g command.GroupAppend) (err error) {
	defer dberr.Mark(&err)
	events := g.Account.Uncommitted()
	n := len(events)
	var (
		versions                       = make([]int32, 0, n)
		ids                            = make([]pgtype.UUID, 0, n)
		types                          = make([]string, 0, n)
		data, metas                    = make([][]byte, 0, n), make([][]byte, 0, n)
		principals, methods, paths, ks []string
		hashes, answers                [][]byte
	)
	for _, d := range g.Decisions {
		meta, err := json.Marshal(d.Metadata)
		if err != nil {
			return fmt.Errorf("append: encode metadata: %w", err)
		}
		for range d.Events {
			i := len(versions)
			if i == n {
				return fmt.Errorf("append: the decisions name more than the %d events", n)
			}
			t, _, raw, err := domain.EncodeEvent(events[i])
			if err != nil {
				return err
			}
			versions = append(versions, int32(g.ExpectedVersion+i+1))
			ids = append(ids, pgUUID(uuid.New()))
			types, data, metas = append(types, t), append(data, raw), append(metas, meta)
		}
		if d.Idempotency != nil && d.Answer != nil {
			sc := d.Idempotency
			principals, methods, paths, ks = append(principals, sc.Principal), append(methods, sc.Method), append(paths, sc.Path), append(ks, sc.Key)
			hashes, answers = append(hashes, d.Fingerprint), append(answers, []byte(d.Answer))
		}
	}
	if len(versions) != n {
		return fmt.Errorf("append: the decisions name %d of the %d events", len(versions), n)
	}
	_, err = s.pool.Exec(ctx, appendGroupSQL, pgUUID(g.Account.ID()), domain.StreamType, domain.CurrentSchemaVersion,
		versions, ids, types, data, metas, principals, methods, paths, ks, hashes, answers)
	if err != nil {
		return mapAppendError(g.Account.ID(), err)
	}
	s.maybeSnapshot(ctx, g.Account, g.ExpectedVersion)
	return nil
}

// eventArgs are the parameters of appendSQL's events: $1-$4 shared by every
// row (stream, type, schema version, metadata), then four per event (version,
// event id, event type, data); extra is room for the caller's own.
func eventArgs(ap command.Append, extra int) ([]any, error) {
	events := ap.Account.Uncommitted()
	if len(events) == 0 {
		return make([]any, 0, extra), nil
	}
	if ap.EventIDs != nil && len(ap.EventIDs) != len(events) {
		return nil, fmt.Errorf("append: %d event ids for %d events", len(ap.EventIDs), len(events))
	}
	meta, err := json.Marshal(ap.Metadata)
	if err != nil {
		return nil, fmt.Errorf("append: encode metadata: %w", err)
	}
	args := make([]any, 0, 4+4*len(events)+extra)
	args = append(args, pgUUID(ap.Account.ID()), domain.StreamType, domain.CurrentSchemaVersion, meta)
	for i, e := range events {
		t, _, data, err := domain.EncodeEvent(e)
		if err != nil {
			return nil, err
		}
		id := uuid.New()
		if ap.EventIDs != nil {
			id = ap.EventIDs[i]
		}
		args = append(args, ap.ExpectedVersion+i+1, pgUUID(id), t, data)
	}
	return args, nil
}

// pgUUID is id as pgx encodes it natively (binary); a uuid.UUID would go
// through its driver.Valuer, as a string parsed back on every call.
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

func mapAppendError(id uuid.UUID, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		switch pgErr.ConstraintName {
		case "events_stream_id_version_key":
			return fmt.Errorf("append to %s: %w", id, command.ErrVersionTaken)
		case "idempotency_keys_pkey":
			return fmt.Errorf("append to %s: %w", id, command.ErrIdempotencyKeyTaken)
		case "transfer_sagas_pkey":
			return fmt.Errorf("append to %s: %w", id, command.ErrTransferExists)
		}
	}
	return fmt.Errorf("append to %s: %w", id, err)
}

// maybeSnapshot writes a snapshot when this append crossed a multiple of
// SnapshotEvery. It runs after the commit and never fails the command.
func (s *EventStore) maybeSnapshot(ctx context.Context, a *domain.Account, before int) {
	n := s.snapshotEvery
	if n <= 0 || a.Version()/n == before/n {
		return
	}
	if err := s.SaveSnapshot(ctx, a.State()); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Str("stream_id", a.ID().String()).Int("version", a.Version()).Msg("snapshot not written")
	}
}

// SaveSnapshot stores st as the snapshot of its stream at st.Version. The
// snapshot's recorded_at is that of its last event, read from the store.
func (s *EventStore) SaveSnapshot(ctx context.Context, st domain.AccountState) (err error) {
	defer dberr.Mark(&err)
	state, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `
INSERT INTO snapshots (stream_id, version, state_version, state, recorded_at)
SELECT $1, $2, $3, $4, recorded_at FROM events WHERE stream_id = $1 AND version = $2
ON CONFLICT DO NOTHING`, pgUUID(st.ID), st.Version, domain.SnapshotStateVersion, state)
	return err
}

// LookupAnswer implements command.EventStore.
func (s *EventStore) LookupAnswer(ctx context.Context, scope command.IdempotencyScope) (_ *command.KeptAnswer, err error) {
	defer dberr.Mark(&err)
	var rec command.KeptAnswer
	err = s.pool.QueryRow(ctx, `
SELECT request_hash, answer
FROM idempotency_keys WHERE principal = $1 AND method = $2 AND path = $3 AND idempotency_key = $4`,
		scope.Principal, scope.Method, scope.Path, scope.Key).Scan(&rec.Fingerprint, &rec.Answer)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up idempotency key: %w", err)
	}
	return &rec, nil
}

// LookupAnswers implements command.EventStore. One key, the usual case, is
// LookupAnswer's plain statement, cheaper than unnesting arrays.
func (s *EventStore) LookupAnswers(ctx context.Context, scopes []command.IdempotencyScope) (_ []*command.KeptAnswer, err error) {
	if len(scopes) == 1 {
		rec, err := s.LookupAnswer(ctx, scopes[0])
		if err != nil {
			return nil, err
		}
		return []*command.KeptAnswer{rec}, nil
	}
	defer dberr.Mark(&err)
	principals, methods, paths, keys := make([]string, len(scopes)), make([]string, len(scopes)), make([]string, len(scopes)), make([]string, len(scopes))
	for i, sc := range scopes {
		principals[i], methods[i], paths[i], keys[i] = sc.Principal, sc.Method, sc.Path, sc.Key
	}
	rows, err := s.pool.Query(ctx, `
SELECT k.i, r.request_hash, r.answer
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS k(principal, method, path, idempotency_key, i)
JOIN idempotency_keys r USING (principal, method, path, idempotency_key)`, principals, methods, paths, keys)
	if err != nil {
		return nil, fmt.Errorf("look up idempotency keys: %w", err)
	}
	defer rows.Close()
	out := make([]*command.KeptAnswer, len(scopes))
	for rows.Next() {
		var (
			i   int64
			rec command.KeptAnswer
		)
		if err := rows.Scan(&i, &rec.Fingerprint, &rec.Answer); err != nil {
			return nil, fmt.Errorf("look up idempotency keys: %w", err)
		}
		if i < 1 || i > int64(len(out)) {
			return nil, fmt.Errorf("look up idempotency keys: row %d of %d", i, len(out))
		}
		out[i-1] = &rec
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up idempotency keys: %w", err)
	}
	return out, nil
}

// PurgeLockKey is the pg_try_advisory_lock key, on the event store, that lets
// one api instance at a time purge idempotency keys ("evbank-i"; the
// projector's rebuild uses "evbank-r").
const PurgeLockKey int64 = 0x657662616e6b2d69

// PurgeResult is what one PurgeIdempotencyKeys call did.
type PurgeResult struct {
	Deleted int64
	// Batches is the number of DELETE statements, each its own transaction.
	Batches int
	// Busy means another session held PurgeLockKey: this call did nothing.
	Busy bool
}

// PurgeIdempotencyKeys deletes records older than keep (the contract keeps them
// at least 24 h), at most batch rows per statement, until none is left or ctx
// ends. Each statement is its own short transaction: one DELETE of every
// expired row would hold a snapshot back for its whole run, and with it every
// tailing reader (DESIGN §4). One session at a time purges, under a session
// advisory lock on a connection of its own; the others find it busy and
// return at once.
func (s *EventStore) PurgeIdempotencyKeys(ctx context.Context, keep time.Duration, batch int) (res PurgeResult, err error) {
	defer dberr.Mark(&err)
	if batch <= 0 {
		return res, fmt.Errorf("purge idempotency keys: batch %d must be positive", batch)
	}
	ran, err := s.TryExclusive(ctx, PurgeLockKey, func(ctx context.Context) error {
		for {
			tag, err := s.pool.Exec(ctx, `
DELETE FROM idempotency_keys WHERE ctid IN (
	SELECT ctid FROM idempotency_keys WHERE created_at < now() - $1::interval LIMIT $2)`, keep, batch)
			if err != nil {
				return err
			}
			res.Batches++
			res.Deleted += tag.RowsAffected()
			if tag.RowsAffected() < int64(batch) {
				return nil
			}
		}
	})
	res.Busy = !ran && err == nil
	if err != nil {
		return res, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return res, nil
}

// TransferRecoveryLockKey lets one api instance at a time recover transfers
// ("evbank-t").
const TransferRecoveryLockKey int64 = 0x657662616e6b2d74

// TryExclusive runs fn unless another session holds the advisory lock key,
// holding it meanwhile on a connection of its own: one api instance at a
// time does the work, and the others find it busy (ran false) at once. A
// crashed holder's session ends and frees the lock.
func (s *EventStore) TryExclusive(ctx context.Context, key int64, fn func(ctx context.Context) error) (ran bool, err error) {
	defer dberr.Mark(&err)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return false, fmt.Errorf("advisory lock: %w", err)
	}
	if !got {
		return false, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); uerr != nil {
			// A pooled session must not keep the lock: closing it ends the
			// session, and the pool drops the closed connection.
			_ = conn.Conn().Close(uctx)
		}
	}()
	return true, fn(ctx)
}
