-- Idempotency keys belong to the principal that sent them (DESIGN §6): one
-- client can neither replay nor claim in advance another client's key.
-- Records kept before this migration belong to no principal ('') and so are
-- never replayed to anyone; they expire with the rest.
ALTER TABLE idempotency_keys ADD COLUMN principal text NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (principal, method, path, idempotency_key);
