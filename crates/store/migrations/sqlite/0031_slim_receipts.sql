-- Consentry embedded store: fewer bytes per change (issue 16). Nothing is kept per change that the ledger
-- already holds:
-- * a receipt no longer stores its subject's pseudonym (the event at its `first_seq` names it, and that
--   event's own index finds a subject's receipts), nor the signing key's id as text per row: each key id is
--   named once in `receipt_kids` and a receipt keeps its number; its id, when of the form the service makes
--   (`rcpt_` and 32 lowercase hex digits), is kept as its 16 bytes (any other id as its text);
-- * an event no longer stores `prev_hash`: it is the hash of the event before it (the genesis hash for the
--   first), read back with it, so the chain and every hash over it stay as they were;
-- * the Merkle tree no longer stores its leaves: leaf i is the hash of event i + 1's canonical bytes, read
--   from the ledger when a proof needs it; the nodes above them stay.
CREATE TABLE receipt_kids (
    n   INTEGER PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE
) STRICT;
INSERT INTO receipt_kids (kid) SELECT DISTINCT kid FROM receipts WHERE kid IS NOT NULL ORDER BY kid;

CREATE TABLE receipts_slim (
    id              ANY PRIMARY KEY,            -- the 16 bytes of `rcpt_<32 hex>`, any other id as text
    first_seq       INTEGER NOT NULL REFERENCES events (seq),
    last_seq        INTEGER NOT NULL REFERENCES events (seq),
    catalog_version INTEGER NOT NULL,           -- the catalogue the receipt's names come from
    created_at      INTEGER NOT NULL,           -- microseconds since the epoch; the receipt's `iat`
    kid             INTEGER REFERENCES receipt_kids (n) -- NULL for receipts kept before keys were recorded
) STRICT;
INSERT INTO receipts_slim (id, first_seq, last_seq, catalog_version, created_at, kid)
SELECT CASE WHEN length(r.id) = 37 AND substr(r.id, 1, 5) = 'rcpt_' AND substr(r.id, 6) NOT GLOB '*[^0-9a-f]*'
            THEN unhex(substr(r.id, 6)) ELSE r.id END,
       r.first_seq, r.last_seq, r.catalog_version, r.created_at, k.n
FROM receipts r LEFT JOIN receipt_kids k ON k.kid = r.kid
ORDER BY r.first_seq, r.id;
DROP TABLE receipts;
ALTER TABLE receipts_slim RENAME TO receipts;
CREATE INDEX receipts_by_first_seq ON receipts (first_seq);

ALTER TABLE events DROP COLUMN prev_hash;

DROP TRIGGER tlog_nodes_no_delete;
DELETE FROM tlog_nodes WHERE level = 0;
CREATE TRIGGER tlog_nodes_no_delete BEFORE DELETE ON tlog_nodes
BEGIN SELECT RAISE(ABORT, 'tree nodes are append-only'); END;
