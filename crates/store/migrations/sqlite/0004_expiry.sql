-- Schema version 4: finding lapsed grants quickly, and leases for background jobs.

CREATE INDEX events_expiring ON events (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  INTEGER NOT NULL
) STRICT;
