package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/evbank/bank/internal/dberr"
	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/eventlog"
)

// ReadStream returns up to limit events of stream id after afterVersion, in
// version order, each upcast to the current shape. An unreadable event is an
// *eventlog.UpcastError naming its position.
func (s *EventStore) ReadStream(ctx context.Context, id uuid.UUID, afterVersion, limit int) (_ []eventlog.RecordedEvent, err error) {
	defer dberr.Mark(&err)
	rows, err := s.pool.Query(ctx, `
SELECT global_position, transaction_id::text::bigint, version, event_id, event_type, schema_version, data, metadata, recorded_at
FROM events WHERE stream_id = $1 AND version > $2
ORDER BY version LIMIT $3`, pgUUID(id), afterVersion, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", id, err)
	}
	defer rows.Close()
	var out []eventlog.RecordedEvent
	for rows.Next() {
		r := eventlog.RecordedEvent{StreamID: id}
		var (
			raw           []byte
			schemaVersion int16
		)
		if err := rows.Scan(&r.GlobalPosition, &r.TransactionID, &r.Version, &r.EventID, &r.EventType, &schemaVersion, &raw, &r.Metadata, &r.RecordedAt); err != nil {
			return nil, fmt.Errorf("read stream %s: %w", id, err)
		}
		r.SchemaVersion = int(schemaVersion)
		if err := Decode(&r, raw, s.uc); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stream %s: %w", id, err)
	}
	return out, nil
}

// StreamHead returns who owns account stream id (the owner_id of its opening
// event, upcast like any read) and the stream's current version: what an
// ownership check needs, in one round trip. A stream that does not exist is
// domain.ErrAccountNotFound.
func (s *EventStore) StreamHead(ctx context.Context, id uuid.UUID) (owner string, version int, err error) {
	defer dberr.Mark(&err)
	r := eventlog.RecordedEvent{StreamID: id, Version: 1}
	var (
		raw           []byte
		schemaVersion int16
	)
	err = s.pool.QueryRow(ctx, `
SELECT global_position, event_type, schema_version, data, (SELECT max(version) FROM events WHERE stream_id = $1)
FROM events WHERE stream_id = $1 AND version = 1`, pgUUID(id)).Scan(&r.GlobalPosition, &r.EventType, &schemaVersion, &raw, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, domain.ErrAccountNotFound
	}
	if err != nil {
		return "", 0, fmt.Errorf("stream head %s: %w", id, err)
	}
	r.SchemaVersion = int(schemaVersion)
	if err := Decode(&r, raw, s.uc); err != nil {
		return "", 0, err
	}
	opened, ok := r.Event.(domain.AccountOpened)
	if !ok {
		return "", 0, fmt.Errorf("stream head %s: version 1 is %s, not %s", id, r.EventType, domain.TypeAccountOpened)
	}
	return opened.OwnerID, version, nil
}
