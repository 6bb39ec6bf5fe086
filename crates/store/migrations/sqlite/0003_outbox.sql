-- Consentry embedded store, schema version 3: propagation. The transactional outbox (written in the same
-- transaction as the ledger events that cause its messages), the destinations messages go to, and one
-- delivery per destination and message. Pseudonyms only: the dispatcher adds the subject id when sending.
-- The destinations' signing secrets are in the key store (keystore_0003_destinations.sql).

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: destinations' cursors point into it
    pseudonym  TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload    TEXT NOT NULL,                     -- JSON, without the subject id
    created_at INTEGER NOT NULL                   -- microseconds since the epoch
) STRICT;

CREATE TABLE destinations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,                    -- webhook | nats | mqtt
    url         TEXT NOT NULL,
    target      TEXT,                             -- NATS subject or MQTT topic
    event_types TEXT NOT NULL,                    -- JSON array of patterns, like "consent.*"
    paused      INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    flagged     INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1)),  -- has dead letters
    cursor      INTEGER NOT NULL DEFAULT 0,       -- the last outbox id fanned out to it
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE deliveries (
    destination_id  TEXT NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    outbox_id       INTEGER NOT NULL REFERENCES outbox (id),
    pseudonym       TEXT NOT NULL,                -- the message's, so a subject's messages go out in order
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at INTEGER NOT NULL,
    leased_until    INTEGER,                      -- a worker holds it until then
    delivered_at    INTEGER,
    PRIMARY KEY (destination_id, outbox_id)
) STRICT, WITHOUT ROWID;
-- "Is an earlier message of this subject still pending for this destination?" Only pending rows matter.
CREATE INDEX deliveries_pending_by_subject ON deliveries (destination_id, pseudonym, outbox_id)
    WHERE status = 'pending';
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
