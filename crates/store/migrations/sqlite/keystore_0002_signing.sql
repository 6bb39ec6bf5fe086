-- Consentry key store, schema version 2: the Ed25519 keys that sign receipts and checkpoints.
-- Rotation adds a key and makes it current; old keys stay to verify what they signed.

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    secret     BLOB NOT NULL,
    public     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    current    INTEGER NOT NULL DEFAULT 0 CHECK (current IN (0, 1))
) STRICT;
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (current) WHERE current = 1;
