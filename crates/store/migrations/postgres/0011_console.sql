-- The operator console (the schema version this makes depends on the migrations before it).

-- Signed-in console sessions: the session token only as HMAC-SHA256 under the key store's pepper, the API
-- key it was opened with (a revoked key ends its sessions), and when it was last used (microseconds):
-- a session idle for longer than the console's idle limit is refused and dropped.
CREATE TABLE console_sessions (
    token_hash  BYTEA PRIMARY KEY,
    key_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen);

-- Day-bucketed counters the console's overview reads instead of the ledger: per day (days since
-- 1970-01-01, UTC), purpose and metric (an action such as `grant`, or `gpc`), how many events. Kept by a
-- worker that follows the ledger from `console_rollup_cursor` (the last sequence number folded in), in the
-- same transaction as the counters it adds; `consentry console rebuild-rollups` starts both again from 0.
CREATE TABLE console_rollups (
    day      BIGINT NOT NULL,
    purpose  TEXT NOT NULL,
    metric   TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (day, purpose, metric)
);

CREATE TABLE console_rollup_cursor (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL
);
INSERT INTO console_rollup_cursor (id, seq) VALUES (1, 0);
