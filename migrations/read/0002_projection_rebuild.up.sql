-- Progress of `projector rebuild`: one row while a rebuild is under way (or was
-- interrupted and can resume). The rebuild writes shadow tables named
-- <table>_rebuild beside the live ones and swaps them in at the end, in one
-- transaction that also sets the projections' checkpoints and deletes this row.
CREATE TABLE projection_rebuild (
    singleton       boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    -- The projections being rebuilt, sorted; a rebuild of other names starts over.
    projections     text[]      NOT NULL,
    -- load: folding the event store in memory, transaction_history rows copied
    -- chunk by chunk; ready: every shadow table complete and indexed, kept up
    -- to date batch by batch until the swap.
    phase           text        NOT NULL CHECK (phase IN ('load', 'ready')),
    -- The position read and folded up to (the shadow transaction_history holds
    -- the rows of every event up to it; when ready, every shadow table does),
    -- and how many events that is.
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    events_done     bigint      NOT NULL DEFAULT 0,
    -- Load phase: the position at which the fold's in-memory state (accounts,
    -- days) was last saved whole into account_balances_rebuild and
    -- daily_summaries_rebuild; a resume starts folding there. NULL: no state
    -- saved, a resume folds from the start again (writing no row twice).
    state_transaction_id  xid8,
    state_global_position bigint,
    state_events_done     bigint,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
