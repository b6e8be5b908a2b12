-- Read side: projection tables and their checkpoints. They may live in another
-- database than the event store (READ_DATABASE_URL), so nothing here references events.

CREATE TABLE account_balances (
    account_id    uuid        PRIMARY KEY,
    owner_id      text        NOT NULL,
    currency      text        NOT NULL,
    balance_minor bigint      NOT NULL,
    status        text        NOT NULL CHECK (status IN ('active', 'closed')),
    version       int         NOT NULL,
    opened_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    closed_at     timestamptz
) WITH (fillfactor = 80); -- room on each page for HOT updates: every batch rewrites its accounts' rows

CREATE INDEX account_balances_owner ON account_balances (owner_id, account_id);
CREATE INDEX account_balances_status ON account_balances (status, account_id);

CREATE TABLE transaction_history (
    event_id            uuid        PRIMARY KEY,
    account_id          uuid        NOT NULL,
    type                text        NOT NULL CHECK (type IN ('deposit', 'withdrawal')),
    amount_minor        bigint      NOT NULL,
    currency            text        NOT NULL,
    description         text        NOT NULL,
    balance_after_minor bigint      NOT NULL,
    version             int         NOT NULL,
    occurred_at         timestamptz NOT NULL,
    UNIQUE (account_id, version)
);

CREATE TABLE daily_summaries (
    account_id              uuid   NOT NULL,
    day                     date   NOT NULL,
    currency                text   NOT NULL,
    deposits_count          int    NOT NULL,
    deposits_total_minor    bigint NOT NULL,
    withdrawals_count       int    NOT NULL,
    withdrawals_total_minor bigint NOT NULL,
    closing_balance_minor   bigint NOT NULL,
    last_version            int    NOT NULL,
    PRIMARY KEY (account_id, day)
) WITH (fillfactor = 80); -- a day's row is updated by every batch that moves money that day

-- One row per projection: the (transaction_id, global_position) pair of the last
-- event applied, committed in the same transaction as the projection's writes.
-- The projector compares-and-sets the pair and updated_at, so that any other
-- change to a row makes the active instance stop and reload.
CREATE TABLE projection_checkpoints (
    projection      text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
