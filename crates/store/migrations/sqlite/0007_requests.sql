-- Data subject requests: the requests (by pseudonym), one task per downstream destination, every change
-- kept, and the tombstones of erased subjects (keyed hashes of their ids, never the ids).

CREATE TABLE requests (
    id          TEXT PRIMARY KEY,          -- sorts by time of receipt
    pseudonym   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,             -- received, in_progress, completed, rejected
    details     TEXT,                      -- JSON; cleared when the subject is erased
    received_at INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    own_done_at INTEGER,
    closed_at   INTEGER,
    reason      TEXT,
    overdue_at  INTEGER,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX requests_by_pseudonym ON requests (pseudonym, id);
CREATE INDEX requests_open_by_due ON requests (due_at) WHERE status IN ('received', 'in_progress');

CREATE TABLE request_tasks (
    request_id     TEXT NOT NULL REFERENCES requests (id),
    destination_id TEXT NOT NULL,
    status         TEXT NOT NULL,          -- pending, completed
    note           TEXT,
    created_at     INTEGER NOT NULL,
    completed_at   INTEGER,
    PRIMARY KEY (request_id, destination_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE request_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL REFERENCES requests (id),
    at         INTEGER NOT NULL,
    change     TEXT NOT NULL,
    status     TEXT NOT NULL,              -- the request's status after the change
    actor      TEXT NOT NULL,
    note       TEXT
) STRICT;
CREATE INDEX request_events_by_request ON request_events (request_id, id);
CREATE TRIGGER request_events_no_update BEFORE UPDATE ON request_events
BEGIN SELECT RAISE(ABORT, 'request history is append-only'); END;
CREATE TRIGGER request_events_no_delete BEFORE DELETE ON request_events
BEGIN SELECT RAISE(ABORT, 'request history is append-only'); END;

CREATE TABLE erased_subjects (
    tombstone TEXT PRIMARY KEY,            -- HMAC-SHA256 (hex) of the subject id under the key store's erasure secret
    erased_at INTEGER NOT NULL
) STRICT;
