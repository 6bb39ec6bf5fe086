-- Consentry on PostgreSQL, schema version 2: receipts, checkpoints, the access log, check counts, and the
-- signing keys (in the key store schema). Like the ledger, the data tables hold pseudonyms only.

-- A receipt is written in the same transaction as the events it seals (seqs first_seq..=last_seq).
CREATE TABLE receipts (
    id         TEXT PRIMARY KEY,
    pseudonym  TEXT NOT NULL,
    first_seq  BIGINT NOT NULL REFERENCES events (seq),
    last_seq   BIGINT NOT NULL REFERENCES events (seq),
    jws        TEXT NOT NULL,
    created_at BIGINT NOT NULL               -- microseconds since the epoch
);

-- Signed statements of the ledger head; one per ledger length.
CREATE TABLE checkpoints (
    events     BIGINT PRIMARY KEY,
    head       TEXT NOT NULL,
    jws        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Who read a subject's data, when, through which route and for what purpose.
CREATE TABLE access_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pseudonym TEXT NOT NULL,
    at        BIGINT NOT NULL,
    caller    TEXT NOT NULL,
    route     TEXT NOT NULL,
    purpose   TEXT NOT NULL
);
CREATE INDEX access_log_by_pseudonym ON access_log (pseudonym, id);

-- How often each subject's consent to each purpose was checked, and when last.
CREATE TABLE check_counts (
    pseudonym TEXT NOT NULL,
    purpose   TEXT NOT NULL,
    count     BIGINT NOT NULL,
    last_at   BIGINT NOT NULL,
    PRIMARY KEY (pseudonym, purpose)
);

-- The Ed25519 keys that sign receipts and checkpoints. Rotation adds a key and makes it current; old keys
-- stay to verify what they signed.
CREATE TABLE consentry_keystore.signing_keys (
    kid        TEXT PRIMARY KEY,
    secret     BYTEA NOT NULL,
    public     BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    current    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX signing_keys_one_current ON consentry_keystore.signing_keys (current) WHERE current;
