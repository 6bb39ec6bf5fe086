-- Receipts are no longer kept signed: their payload names the person, so a stored copy would outlive the
-- erasure that destroys the key linking the pseudonym to them. What is kept builds them again from the
-- ledger: the events they seal, the catalogue version they were made from, when they were issued and the
-- key that signed them.
-- The old table goes whole, its pages overwritten (secure_delete), not left free with the ids in them.
PRAGMA secure_delete = ON;

CREATE TABLE receipts_kept (
    id              TEXT PRIMARY KEY,
    pseudonym       TEXT NOT NULL,
    first_seq       INTEGER NOT NULL REFERENCES events (seq),
    last_seq        INTEGER NOT NULL REFERENCES events (seq),
    catalog_version INTEGER NOT NULL,         -- the catalogue the receipt's names come from
    created_at      INTEGER NOT NULL,         -- microseconds since the epoch; the receipt's `iat`
    kid             TEXT                      -- the signing key; NULL for receipts kept before this version
) STRICT;

-- A receipt made before this version names the catalogue in force when it was made.
INSERT INTO receipts_kept (id, pseudonym, first_seq, last_seq, catalog_version, created_at)
SELECT r.id, r.pseudonym, r.first_seq, r.last_seq,
       COALESCE((SELECT MAX(c.version) FROM catalogs c WHERE c.applied_at <= r.created_at),
                (SELECT MIN(c.version) FROM catalogs c), 1),
       r.created_at
FROM receipts r;

DROP TABLE receipts;
ALTER TABLE receipts_kept RENAME TO receipts;
CREATE INDEX receipts_by_pseudonym ON receipts (pseudonym, created_at);

PRAGMA secure_delete = OFF;
