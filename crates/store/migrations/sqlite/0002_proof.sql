-- Consentry embedded store, schema version 2: receipts, checkpoints, the access log and check counts.
-- Like the ledger, these hold pseudonyms only; the subject ids stay in the key store.

-- A receipt is written in the same transaction as the events it seals (seqs first_seq..=last_seq).
CREATE TABLE receipts (
    id         TEXT PRIMARY KEY,
    pseudonym  TEXT NOT NULL,
    first_seq  INTEGER NOT NULL REFERENCES events (seq),
    last_seq   INTEGER NOT NULL REFERENCES events (seq),
    jws        TEXT NOT NULL,
    created_at INTEGER NOT NULL            -- microseconds since the epoch
) STRICT;

-- Signed statements of the ledger head; one per ledger length.
CREATE TABLE checkpoints (
    events     INTEGER PRIMARY KEY,
    head       TEXT NOT NULL,
    jws        TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Who read a subject's data, when, through which route and for what purpose.
CREATE TABLE access_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so it pages
    pseudonym TEXT NOT NULL,
    at        INTEGER NOT NULL,
    caller    TEXT NOT NULL,
    route     TEXT NOT NULL,
    purpose   TEXT NOT NULL
) STRICT;
CREATE INDEX access_log_by_pseudonym ON access_log (pseudonym, id);

-- How often each subject's consent to each purpose was checked, and when last.
CREATE TABLE check_counts (
    pseudonym TEXT NOT NULL,
    purpose   TEXT NOT NULL,
    count     INTEGER NOT NULL,
    last_at   INTEGER NOT NULL,
    PRIMARY KEY (pseudonym, purpose)
) STRICT, WITHOUT ROWID;
