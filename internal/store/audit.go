package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/eventlog"
)

// ReadStream returns up to limit events of stream id after afterVersion, in
// version order, each upcast to the current shape. An unreadable event is an
// *eventlog.UpcastError naming its position.
func (s *EventStore) ReadStream(ctx context.Context, id uuid.UUID, afterVersion, limit int) ([]eventlog.RecordedEvent, error) {
	rows, err := s.pool.Query(ctx, `
SELECT global_position, transaction_id::text::bigint, version, event_id, event_type, schema_version, data, metadata, recorded_at
FROM events WHERE stream_id = $1 AND version > $2
ORDER BY version LIMIT $3`, id, afterVersion, limit)
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

// StreamVersion returns the current version of stream id, 0 when it does not exist.
func (s *EventStore) StreamVersion(ctx context.Context, id uuid.UUID) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM events WHERE stream_id = $1`, id).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("stream version %s: %w", id, err)
	}
	return v, nil
}
