-- Consentry embedded store, schema version 1: keys, catalogue, notices and the consent ledger.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,             -- JSON array of scope names
    secret_hash BLOB NOT NULL UNIQUE,      -- SHA-256 of the secret; the secret itself is never stored
    created_at  INTEGER NOT NULL,          -- microseconds since the epoch
    revoked_at  INTEGER
) STRICT;
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;

CREATE TABLE catalogs (
    version    INTEGER PRIMARY KEY,
    document   TEXT NOT NULL,              -- the validated document as JSON
    applied_at INTEGER NOT NULL
) STRICT;

CREATE TABLE notices (
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    title      TEXT NOT NULL,
    language   TEXT NOT NULL,
    url        TEXT,
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (key, version)
) STRICT;

-- The ledger. Append-only: the triggers below refuse every UPDATE and DELETE.
CREATE TABLE events (
    seq              INTEGER PRIMARY KEY,  -- position in the chain, from 1, without gaps
    pseudonym        TEXT NOT NULL,        -- keyed hash of the subject id; the subject id is never stored here
    purpose          TEXT NOT NULL,
    action           TEXT NOT NULL,
    categories       TEXT NOT NULL,        -- JSON arrays, sorted
    channels         TEXT NOT NULL,
    recipients       TEXT NOT NULL,
    notice           TEXT,
    notice_version   INTEGER,
    notice_hash      TEXT,
    collection_point TEXT,
    actor            TEXT NOT NULL,
    recorded_at      INTEGER NOT NULL,
    expires_at       INTEGER,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_pseudonym ON events (pseudonym, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;

-- Current state: the latest event per subject, purpose and exact scope. Written in the same transaction
-- as the events it points to.
CREATE TABLE consent_state (
    pseudonym TEXT NOT NULL,
    purpose   TEXT NOT NULL,
    scope     TEXT NOT NULL,               -- canonical JSON of the scope
    seq       INTEGER NOT NULL REFERENCES events (seq),
    PRIMARY KEY (pseudonym, purpose, scope)
) STRICT, WITHOUT ROWID;
CREATE INDEX consent_state_by_seq ON consent_state (seq);
