-- An idempotency record keeps the answer as the transport made it: opaque
-- bytes to the event store and to the command layer. The records kept so far
-- become the HTTP transport's envelope (a JSON object of status, header and
-- base64 body), so that a retry after the upgrade still gets its first answer.
ALTER TABLE idempotency_keys ADD COLUMN answer bytea;
UPDATE idempotency_keys
SET answer = convert_to(jsonb_build_object(
        'status', response_status,
        'header', COALESCE(response_headers, '{}'::jsonb),
        'body', translate(encode(response_body, 'base64'), E'\n', ''))::text, 'UTF8')
WHERE response_status IS NOT NULL;
DELETE FROM idempotency_keys WHERE answer IS NULL;
ALTER TABLE idempotency_keys
    ALTER COLUMN answer SET NOT NULL,
    DROP COLUMN response_status,
    DROP COLUMN response_headers,
    DROP COLUMN response_body,
    DROP COLUMN completed_at;
