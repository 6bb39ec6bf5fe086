-- Consentry on PostgreSQL, schema version 3: propagation. The transactional outbox (written in the same
-- transaction as the ledger events that cause its messages), the destinations messages go to, one delivery
-- per destination and message, and the destinations' signing secrets (in the key store schema).
--
-- Outbox ids follow commit order: every insert into the outbox holds an advisory lock until its commit, so
-- a destination's cursor (the last id fanned out to it) never passes a row that commits later.

CREATE TABLE outbox (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pseudonym  TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload    TEXT NOT NULL,                -- JSON, without the subject id
    created_at BIGINT NOT NULL               -- microseconds since the epoch
);

CREATE TABLE destinations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,               -- webhook | nats | mqtt
    url         TEXT NOT NULL,
    target      TEXT,                        -- NATS subject or MQTT topic
    event_types TEXT NOT NULL,               -- JSON array of patterns, like "consent.*"
    paused      BOOLEAN NOT NULL DEFAULT FALSE,
    flagged     BOOLEAN NOT NULL DEFAULT FALSE,  -- has dead letters
    cursor      BIGINT NOT NULL DEFAULT 0,   -- the last outbox id fanned out to it
    created_at  BIGINT NOT NULL
);

CREATE TABLE deliveries (
    destination_id  TEXT NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    outbox_id       BIGINT NOT NULL REFERENCES outbox (id),
    pseudonym       TEXT NOT NULL,           -- the message's, so a subject's messages go out in order
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at BIGINT NOT NULL,
    leased_until    BIGINT,                  -- a worker holds it until then
    delivered_at    BIGINT,
    PRIMARY KEY (destination_id, outbox_id)
);
-- "Is an earlier message of this subject still pending for this destination?" Only pending rows matter.
CREATE INDEX deliveries_pending_by_subject ON deliveries (destination_id, pseudonym, outbox_id)
    WHERE status = 'pending';
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);

CREATE TABLE consentry_keystore.destination_secrets (
    destination_id TEXT PRIMARY KEY,
    secret         BYTEA NOT NULL
);
