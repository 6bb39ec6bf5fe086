-- Consentry key store, schema version 4: each subject's vault data key, wrapped (AES-256-GCM) by the
-- key-encryption key, which no database holds; and the id of the KEK the vault is bound to.

CREATE TABLE subject_data_keys (
    subject    TEXT PRIMARY KEY,
    kek_id     TEXT NOT NULL,            -- which KEK wrapped it
    wrapped    BLOB NOT NULL,            -- nonce || ciphertext || tag
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE vault_kek (
    only_row   INTEGER PRIMARY KEY CHECK (only_row = 1),
    kek_id     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
