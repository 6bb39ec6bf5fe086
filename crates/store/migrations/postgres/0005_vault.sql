-- Consentry on PostgreSQL, schema version 5: the personal data vault. Payloads are stored only encrypted
-- (AES-256-GCM under the subject's data key); the data keys live wrapped by the key-encryption key in the
-- key store schema, and the KEK in no database.

CREATE TABLE records (
    id           TEXT PRIMARY KEY,       -- rec_<stored_at hex><random hex>: sorts by storage time
    pseudonym    TEXT NOT NULL,
    device_id    TEXT,
    category     TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,        -- of the plaintext, in bytes
    collected_at BIGINT NOT NULL,        -- microseconds since the epoch
    stored_at    BIGINT NOT NULL,
    delete_after BIGINT,                 -- the retention sweeper deletes it then; NULL: kept until deleted
    nonce        BYTEA NOT NULL,
    ciphertext   BYTEA NOT NULL
);

CREATE INDEX records_by_subject ON records (pseudonym, id);
CREATE INDEX records_due ON records (delete_after) WHERE delete_after IS NOT NULL;

CREATE TABLE consentry_keystore.subject_data_keys (
    subject    TEXT PRIMARY KEY,
    kek_id     TEXT NOT NULL,
    wrapped    BYTEA NOT NULL,           -- nonce || ciphertext || tag
    created_at BIGINT NOT NULL
);

CREATE TABLE consentry_keystore.vault_kek (
    only_row   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    kek_id     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
