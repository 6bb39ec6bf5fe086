-- Checks per purpose and how many were denied, per day (days since 1970-01-01, UTC), for the console's
-- overview. Each node counts its checks in memory and adds its deltas here every few seconds (an upsert
-- that adds, so nodes add up). The checks leave no other trace: these rows cannot be rebuilt.
CREATE TABLE console_checks (
    day      INTEGER NOT NULL,
    purpose  TEXT NOT NULL,
    checks   INTEGER NOT NULL,
    denied   INTEGER NOT NULL,
    PRIMARY KEY (day, purpose)
) STRICT, WITHOUT ROWID;
