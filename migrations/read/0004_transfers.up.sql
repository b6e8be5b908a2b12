-- Transfers on the read side (DESIGN §7): each step is a transaction of the
-- account it touched, counted in its day, and each transfer is a row of its own.

-- The type's CHECK constraint is found by what it checks, not by its name: a
-- rebuild swaps in a table created LIKE the old one, whose constraint may be
-- named otherwise.
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'transaction_history'::regclass AND contype = 'c'
               AND pg_get_constraintdef(oid) LIKE '%type%'
    LOOP
        EXECUTE format('ALTER TABLE transaction_history DROP CONSTRAINT %I', c.conname);
    END LOOP;
END $$;

ALTER TABLE transaction_history
    ADD CONSTRAINT transaction_history_type_check
        CHECK (type IN ('deposit', 'withdrawal', 'transfer_out', 'transfer_in', 'transfer_returned')),
    -- NULL for deposits and withdrawals.
    ADD COLUMN transfer_id             uuid,
    -- The other account of the transfer: the destination for transfer_out and
    -- transfer_returned, the source for transfer_in.
    ADD COLUMN counterparty_account_id uuid;

-- numeric like the other totals: they have no bound (migration 0003).
ALTER TABLE daily_summaries
    ADD COLUMN transfers_in_count        int     NOT NULL DEFAULT 0,
    ADD COLUMN transfers_in_total_minor  numeric NOT NULL DEFAULT 0,
    ADD COLUMN transfers_out_count       int     NOT NULL DEFAULT 0,
    ADD COLUMN transfers_out_total_minor numeric NOT NULL DEFAULT 0;

-- A rebuild's shadow tables of the old shape cannot be resumed: the rebuild
-- compares their columns with the live ones and starts over.

-- One row per transfer, kept by the transfers projection.
CREATE TABLE transfers (
    transfer_id     uuid        PRIMARY KEY,
    from_account_id uuid        NOT NULL,
    to_account_id   uuid        NOT NULL,
    amount_minor    bigint      NOT NULL,
    currency        text        NOT NULL,
    description     text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'completed', 'returned')),
    reason          text,                 -- NULL unless returned
    created_at      timestamptz NOT NULL, -- TransferSent's recorded_at
    completed_at    timestamptz           -- the finishing step's recorded_at; NULL while pending
) WITH (fillfactor = 90); -- room for the one update of each row (pending to completed)

-- GET /accounts/{id}/transfers: newest first, both directions, one index each.
CREATE INDEX transfers_from ON transfers (from_account_id, created_at DESC, transfer_id DESC);
CREATE INDEX transfers_to ON transfers (to_account_id, created_at DESC, transfer_id DESC);
-- /summary's in_flight: the pending transfers only, a small part of the table.
CREATE INDEX transfers_pending ON transfers (currency) INCLUDE (amount_minor) WHERE status = 'pending';
