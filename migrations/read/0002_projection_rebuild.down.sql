DROP TABLE IF EXISTS projection_rebuild;
DROP TABLE IF EXISTS account_balances_rebuild;
DROP TABLE IF EXISTS transaction_history_rebuild;
DROP TABLE IF EXISTS daily_summaries_rebuild;
