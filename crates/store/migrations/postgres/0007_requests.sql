-- Data subject requests: the requests (by pseudonym), one task per downstream destination, every change
-- kept, the tombstones of erased subjects (keyed hashes of their ids, never the ids); in the key store the
-- tombstones' secret and the ids of erased subjects kept only until the messages queued for them left.

CREATE TABLE requests (
    id          TEXT PRIMARY KEY,
    pseudonym   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    details     TEXT,
    received_at BIGINT NOT NULL,
    due_at      BIGINT NOT NULL,
    own_done_at BIGINT,
    closed_at   BIGINT,
    reason      TEXT,
    overdue_at  BIGINT,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX requests_by_pseudonym ON requests (pseudonym, id);
CREATE INDEX requests_open_by_due ON requests (due_at) WHERE status IN ('received', 'in_progress');

CREATE TABLE request_tasks (
    request_id     TEXT NOT NULL REFERENCES requests (id),
    destination_id TEXT NOT NULL,
    status         TEXT NOT NULL,
    note           TEXT,
    created_at     BIGINT NOT NULL,
    completed_at   BIGINT,
    PRIMARY KEY (request_id, destination_id)
);

CREATE TABLE request_events (
    id         BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id),
    at         BIGINT NOT NULL,
    change     TEXT NOT NULL,
    status     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    note       TEXT
);
CREATE INDEX request_events_by_request ON request_events (request_id, id);
CREATE FUNCTION consentry_request_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'request history is append-only';
END;
$$;
CREATE TRIGGER request_events_append_only BEFORE UPDATE OR DELETE ON request_events
    FOR EACH ROW EXECUTE FUNCTION consentry_request_events_append_only();

CREATE TABLE erased_subjects (
    tombstone TEXT PRIMARY KEY,
    erased_at BIGINT NOT NULL
);

CREATE TABLE consentry_keystore.erasure_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BYTEA NOT NULL
);

CREATE TABLE consentry_keystore.erasure_notices (
    pseudonym  TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
