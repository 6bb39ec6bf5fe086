-- Bulk import from another platform (docs/import.md).
-- An imported change keeps the time it was originally made; hashed into the event only when present, so
-- earlier events keep their hashes.
ALTER TABLE events ADD COLUMN occurred_at BIGINT;
-- Current state orders changes by their effective time (occurred_at, else recorded_at), ties by sequence
-- number: an old grant imported today never overrides a withdrawal recorded since. Existing rows take their
-- event's recorded_at.
ALTER TABLE consent_state ADD COLUMN at BIGINT NOT NULL DEFAULT 0;
UPDATE consent_state s SET at = e.recorded_at FROM events e WHERE e.seq = s.seq;
-- Which change of which source became which event: an import never places one change twice.
CREATE TABLE imported (
    source    TEXT NOT NULL,
    source_id TEXT NOT NULL,
    seq       BIGINT NOT NULL REFERENCES events (seq),
    PRIMARY KEY (source, source_id)
);
-- A notice text an import brought that the catalogue did not hold: a version of its notice like any other
-- (receipts and history name it), but never the notice's current version, which the catalogue decides.
ALTER TABLE notices ADD COLUMN imported BOOLEAN NOT NULL DEFAULT false;
