-- Key store: the secret that keys erasure tombstones, and the subject ids of erased subjects kept only
-- until the messages already queued for them (e.g. subject.erased) have left.

CREATE TABLE erasure_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
) STRICT;

CREATE TABLE erasure_notices (
    pseudonym  TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
