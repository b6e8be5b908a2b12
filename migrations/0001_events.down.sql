DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS snapshots;
DROP TABLE IF EXISTS events;
DROP FUNCTION IF EXISTS events_are_append_only();
