-- The progress of each transfer saga (DESIGN §7): written in the same
-- statement as the step it records, so it can never disagree with the events.
-- A row is inserted with step 1 (TransferSent on the source) and finished,
-- only while still pending, with step 2 (TransferReceived) or step 3
-- (TransferReturned): the conditional UPDATE is what makes each step happen
-- once, whichever api process, retry or recovery gets there first.
CREATE TABLE transfer_sagas (
    transfer_id     uuid        PRIMARY KEY,
    from_account_id uuid        NOT NULL,
    to_account_id   uuid        NOT NULL,
    amount_minor    bigint      NOT NULL CHECK (amount_minor > 0),
    currency        text        NOT NULL,
    description     text        NOT NULL,
    -- Who may see it: the owners of both accounts (and admins).
    from_owner      text        NOT NULL,
    to_owner        text        NOT NULL,
    principal       text        NOT NULL,
    -- The request that began it, to tell a retry from a reused id.
    request_hash    bytea       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'returned')),
    reason          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

-- The recovery loop looks for old pending sagas only.
CREATE INDEX transfer_sagas_pending ON transfer_sagas (created_at) WHERE status = 'pending';
