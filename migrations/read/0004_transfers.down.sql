DROP TABLE IF EXISTS transfers_rebuild;
DROP TABLE transfers;
ALTER TABLE daily_summaries
    DROP COLUMN transfers_in_count,
    DROP COLUMN transfers_in_total_minor,
    DROP COLUMN transfers_out_count,
    DROP COLUMN transfers_out_total_minor;
-- Fails while transfer rows exist, rather than drop them silently.
ALTER TABLE transaction_history
    DROP CONSTRAINT transaction_history_type_check,
    ADD CONSTRAINT transaction_history_type_check CHECK (type IN ('deposit', 'withdrawal')),
    DROP COLUMN transfer_id,
    DROP COLUMN counterparty_account_id;
