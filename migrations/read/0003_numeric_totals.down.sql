-- Fails, rather than truncate, when a total no longer fits bigint.
ALTER TABLE IF EXISTS daily_summaries_rebuild
    ALTER COLUMN deposits_total_minor TYPE bigint,
    ALTER COLUMN withdrawals_total_minor TYPE bigint;
ALTER TABLE daily_summaries
    ALTER COLUMN deposits_total_minor TYPE bigint,
    ALTER COLUMN withdrawals_total_minor TYPE bigint;
