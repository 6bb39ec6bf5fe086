-- Paired devices (the schema version this makes depends on the migrations before it).
-- A device belongs to one subject, named by pseudonym only; its token is kept as a SHA-256 hash.

CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    pseudonym   TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    categories  TEXT NOT NULL,      -- JSON array of data category keys
    purposes    TEXT NOT NULL,      -- JSON array of purpose keys
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX devices_by_pseudonym ON devices (pseudonym, created_at);
