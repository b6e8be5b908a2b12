-- The event store. recorded_at is the appending transaction's start, so the events of
-- one append share it. Rows are immutable: the trigger below refuses UPDATE, DELETE
-- and TRUNCATE for every role, the owner included.
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id       uuid        NOT NULL,
    stream_type     text        NOT NULL,
    version         int         NOT NULL CHECK (version >= 1),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    schema_version  smallint    NOT NULL CHECK (schema_version >= 1),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (stream_id, version)
);

-- The tailing reader walks events in (transaction_id, global_position) order.
CREATE INDEX events_tx_order ON events (transaction_id, global_position);

CREATE FUNCTION events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- Snapshots are a cache of folded aggregate state; losing one only costs a replay.
-- recorded_at is that of the snapshot's last event, so temporal reads can tell
-- whether a snapshot is older than the instant they replay to.
CREATE TABLE snapshots (
    stream_id     uuid        NOT NULL,
    version       int         NOT NULL,
    state_version smallint    NOT NULL,
    state         jsonb       NOT NULL,
    recorded_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, version)
);

-- Idempotency records: the first answer to a (method, path, key) is kept and replayed.
-- A row with status NULL is a request still in flight.
CREATE TABLE idempotency_keys (
    method           text        NOT NULL,
    path             text        NOT NULL,
    idempotency_key  text        NOT NULL,
    request_hash     bytea       NOT NULL,
    response_status  int,
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    PRIMARY KEY (method, path, idempotency_key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
