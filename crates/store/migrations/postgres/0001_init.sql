-- Consentry on PostgreSQL, schema version 1: keys, catalogue, notices, the consent ledger, and the key
-- store (schema consentry_keystore, apart from the data: grant it to fewer roles, back it up separately).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,               -- JSON array of scope names
    secret_hash BYTEA NOT NULL UNIQUE,       -- SHA-256 of the secret; the secret itself is never stored
    created_at  BIGINT NOT NULL,             -- microseconds since the epoch
    revoked_at  BIGINT
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;

CREATE TABLE catalogs (
    version    BIGINT PRIMARY KEY,
    document   TEXT NOT NULL,
    applied_at BIGINT NOT NULL
);

CREATE TABLE notices (
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    title      TEXT NOT NULL,
    language   TEXT NOT NULL,
    url        TEXT,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (key, version)
);

-- The ledger. Append-only: the trigger below refuses every UPDATE and DELETE.
CREATE TABLE events (
    seq              BIGINT PRIMARY KEY,     -- position in the chain, from 1, without gaps
    pseudonym        TEXT NOT NULL,          -- keyed hash of the subject id; never the subject id
    purpose          TEXT NOT NULL,
    action           TEXT NOT NULL,
    categories       TEXT NOT NULL,          -- JSON arrays, sorted
    channels         TEXT NOT NULL,
    recipients       TEXT NOT NULL,
    notice           TEXT,
    notice_version   INTEGER,
    notice_hash      TEXT,
    collection_point TEXT,
    actor            TEXT NOT NULL,
    recorded_at      BIGINT NOT NULL,
    expires_at       BIGINT,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);
CREATE INDEX events_by_pseudonym ON events (pseudonym, seq);

CREATE FUNCTION consentry_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger events are append-only';
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION consentry_events_append_only();

CREATE TABLE consent_state (
    pseudonym TEXT NOT NULL,
    purpose   TEXT NOT NULL,
    scope     TEXT NOT NULL,
    seq       BIGINT NOT NULL REFERENCES events (seq),
    PRIMARY KEY (pseudonym, purpose, scope)
);
CREATE INDEX consent_state_by_seq ON consent_state (seq);

CREATE SCHEMA consentry_keystore;
CREATE TABLE consentry_keystore.subject_keys (
    subject       TEXT PRIMARY KEY,
    pseudonym     TEXT NOT NULL UNIQUE,
    pseudonym_key BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);
