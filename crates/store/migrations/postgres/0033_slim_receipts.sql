-- Consentry on PostgreSQL: fewer bytes per change (issue 16). Nothing is kept per change that the ledger
-- already holds:
-- * a receipt no longer stores its subject's pseudonym (the event at its `first_seq` names it, and that
--   event's own index finds a subject's receipts), nor the signing key's id as text per row: each key id is
--   named once in `receipt_kids` and a receipt keeps its number;
-- * an event no longer stores `prev_hash`: it is the hash of the event before it (the genesis hash for the
--   first), read back with it, so the chain and every hash over it stay as they were;
-- * the Merkle tree no longer stores its leaves: leaf i is the hash of event i + 1's canonical bytes, read
--   from the ledger when a proof needs it; the nodes above them stay.
-- The receipts table is built again whole (its old file removed); the events table drops the column (rows
-- written from now on leave it out; older rows give its space back when the table is next rewritten).
CREATE TABLE receipt_kids (
    n   INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE
);
INSERT INTO receipt_kids (kid) SELECT DISTINCT kid FROM receipts WHERE kid IS NOT NULL ORDER BY kid;

CREATE TABLE receipts_slim (
    id              TEXT PRIMARY KEY,
    first_seq       BIGINT NOT NULL REFERENCES events (seq),
    last_seq        BIGINT NOT NULL REFERENCES events (seq),
    catalog_version BIGINT NOT NULL,           -- the catalogue the receipt's names come from
    created_at      BIGINT NOT NULL,           -- microseconds since the epoch; the receipt's `iat`
    kid             INTEGER REFERENCES receipt_kids (n) -- NULL for receipts kept before keys were recorded
);
INSERT INTO receipts_slim (id, first_seq, last_seq, catalog_version, created_at, kid)
SELECT r.id, r.first_seq, r.last_seq, r.catalog_version, r.created_at, k.n
FROM receipts r LEFT JOIN receipt_kids k ON k.kid = r.kid
ORDER BY r.first_seq, r.id;
DROP TABLE receipts;
ALTER TABLE receipts_slim RENAME TO receipts;
ALTER INDEX receipts_slim_pkey RENAME TO receipts_pkey;
CREATE INDEX receipts_by_first_seq ON receipts (first_seq);

ALTER TABLE events DROP COLUMN prev_hash;

ALTER TABLE tlog_nodes DISABLE TRIGGER tlog_nodes_append_only;
DELETE FROM tlog_nodes WHERE level = 0;
ALTER TABLE tlog_nodes ENABLE TRIGGER tlog_nodes_append_only;
