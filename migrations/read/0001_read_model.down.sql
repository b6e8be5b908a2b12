DROP TABLE IF EXISTS projection_checkpoints;
DROP TABLE IF EXISTS daily_summaries;
DROP TABLE IF EXISTS transaction_history;
DROP TABLE IF EXISTS account_balances;
