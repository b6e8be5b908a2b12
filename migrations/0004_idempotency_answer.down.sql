ALTER TABLE idempotency_keys
    ADD COLUMN response_status int,
    ADD COLUMN response_headers jsonb,
    ADD COLUMN response_body bytea,
    ADD COLUMN completed_at timestamptz;
UPDATE idempotency_keys
SET response_status = (convert_from(answer, 'UTF8')::jsonb ->> 'status')::int,
    response_headers = convert_from(answer, 'UTF8')::jsonb -> 'header',
    response_body = decode(convert_from(answer, 'UTF8')::jsonb ->> 'body', 'base64'),
    completed_at = created_at;
ALTER TABLE idempotency_keys DROP COLUMN answer;
