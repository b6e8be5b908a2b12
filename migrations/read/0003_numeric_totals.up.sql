-- A day's totals grow with every legal movement and have no bound: about 9,300
-- cycles of depositing and withdrawing 10^15 minor units in one day pass 2^63,
-- where bigint arithmetic fails and would stop the projector for everyone.
-- numeric holds any total exactly. Balances stay bigint: the domain bounds
-- them at 10^15.
ALTER TABLE daily_summaries
    ALTER COLUMN deposits_total_minor TYPE numeric,
    ALTER COLUMN withdrawals_total_minor TYPE numeric;

-- A rebuild interrupted before this migration resumes into its shadow table,
-- which was created LIKE the old one, and would swap bigint totals back in.
ALTER TABLE IF EXISTS daily_summaries_rebuild
    ALTER COLUMN deposits_total_minor TYPE numeric,
    ALTER COLUMN withdrawals_total_minor TYPE numeric;
