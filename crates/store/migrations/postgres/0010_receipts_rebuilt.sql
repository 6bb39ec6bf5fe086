-- Consentry on PostgreSQL, schema version 10: receipts are no longer kept signed, and an erased subject's
-- id is no longer kept for their outgoing messages.
--
-- A receipt's signed payload names the person, so a stored copy would outlive the erasure that destroys
-- the key linking the pseudonym to them. What is kept builds it again from the ledger: the events it seals,
-- the catalogue version it was made from, when it was issued and the key that signed it. The old table is dropped whole (its file
-- is removed), not emptied row by row into dead tuples.
CREATE TABLE receipts_kept (
    id              TEXT PRIMARY KEY,
    pseudonym       TEXT NOT NULL,
    first_seq       BIGINT NOT NULL REFERENCES events (seq),
    last_seq        BIGINT NOT NULL REFERENCES events (seq),
    catalog_version BIGINT NOT NULL,          -- the catalogue the receipt's names come from
    created_at      BIGINT NOT NULL,          -- microseconds since the epoch; the receipt's `iat`
    kid             TEXT                      -- the signing key; NULL for receipts kept before this version
);

-- A receipt made before this version names the catalogue in force when it was made.
INSERT INTO receipts_kept (id, pseudonym, first_seq, last_seq, catalog_version, created_at)
SELECT r.id, r.pseudonym, r.first_seq, r.last_seq,
       COALESCE((SELECT MAX(c.version) FROM catalogs c WHERE c.applied_at <= r.created_at),
                (SELECT MIN(c.version) FROM catalogs c), 1),
       r.created_at
FROM receipts r;

DROP TABLE receipts;
ALTER TABLE receipts_kept RENAME TO receipts;
ALTER INDEX receipts_kept_pkey RENAME TO receipts_pkey;
CREATE INDEX receipts_by_pseudonym ON receipts (pseudonym, created_at);

-- The erasure waits, for a bounded time, for destinations to take an erased subject's messages while their
-- key still names them; what is still pending after that goes out without the id (`erased: true`).
DROP TABLE consentry_keystore.erasure_notices;
