-- Schema version 5: the personal data vault. Each record's payload is stored only encrypted (AES-256-GCM
-- under the subject's data key, which lives wrapped in the key store); everything else is metadata, under
-- the subject's pseudonym.

CREATE TABLE records (
    id           TEXT PRIMARY KEY,       -- rec_<stored_at hex><random hex>: sorts by storage time
    pseudonym    TEXT NOT NULL,
    device_id    TEXT,
    category     TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,       -- of the plaintext, in bytes
    collected_at INTEGER NOT NULL,       -- microseconds since the epoch
    stored_at    INTEGER NOT NULL,
    delete_after INTEGER,                -- the retention sweeper deletes it then; NULL: kept until deleted
    nonce        BLOB NOT NULL,
    ciphertext   BLOB NOT NULL
) STRICT;

CREATE INDEX records_by_subject ON records (pseudonym, id);
CREATE INDEX records_due ON records (delete_after) WHERE delete_after IS NOT NULL;
