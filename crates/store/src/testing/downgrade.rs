//! SQL that takes a store back to the schema before the newest migrations, for the upgrade tests that roll
//! a store back by count (this crate's and the server's): each undoes one migration, data included, so the
//! older migrations' own roll-backs can follow it.

/// The embedded data file as before 0031 (slim receipts): events store `prev_hash` again (the hash of the
/// event before), receipts their id, their subject's pseudonym (their first event's) and their key id as
/// text. The
/// Merkle tree's nodes go (SQL cannot hash its leaves again): the store builds the tree again when opened.
pub const SQLITE_BEFORE_SLIM_RECEIPTS: &str = "
    DROP TRIGGER tlog_nodes_no_delete; DELETE FROM tlog_nodes;
    CREATE TRIGGER tlog_nodes_no_delete BEFORE DELETE ON tlog_nodes
    BEGIN SELECT RAISE(ABORT, 'tree nodes are append-only'); END;
    DROP TRIGGER events_no_update;
    ALTER TABLE events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
    UPDATE events SET prev_hash = COALESCE((SELECT p.hash FROM events p WHERE p.seq = events.seq - 1),
        '0000000000000000000000000000000000000000000000000000000000000000');
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'ledger events are append-only'); END;
    CREATE TABLE receipts_before (id TEXT PRIMARY KEY, pseudonym TEXT NOT NULL,
        first_seq INTEGER NOT NULL REFERENCES events (seq), last_seq INTEGER NOT NULL REFERENCES events (seq),
        catalog_version INTEGER NOT NULL, created_at INTEGER NOT NULL, kid TEXT) STRICT;
    INSERT INTO receipts_before
        SELECT CASE WHEN typeof(r.id) = 'blob' THEN 'rcpt_' || lower(hex(r.id)) ELSE r.id END,
               e.pseudonym, r.first_seq, r.last_seq, r.catalog_version, r.created_at, k.kid
        FROM receipts r JOIN events e ON e.seq = r.first_seq LEFT JOIN receipt_kids k ON k.n = r.kid;
    DROP TABLE receipts;
    DROP TABLE receipt_kids;
    ALTER TABLE receipts_before RENAME TO receipts;
    CREATE INDEX receipts_by_pseudonym ON receipts (pseudonym, created_at);";

/// The PostgreSQL database as before 0033 (slim receipts), as [`SQLITE_BEFORE_SLIM_RECEIPTS`].
pub const POSTGRES_BEFORE_SLIM_RECEIPTS: &str = "
    ALTER TABLE tlog_nodes DISABLE TRIGGER tlog_nodes_append_only; DELETE FROM tlog_nodes;
    ALTER TABLE tlog_nodes ENABLE TRIGGER tlog_nodes_append_only;
    ALTER TABLE events ADD COLUMN prev_hash TEXT;
    ALTER TABLE events DISABLE TRIGGER events_append_only;
    UPDATE events SET prev_hash = COALESCE((SELECT p.hash FROM events p WHERE p.seq = events.seq - 1),
        '0000000000000000000000000000000000000000000000000000000000000000');
    ALTER TABLE events ENABLE TRIGGER events_append_only;
    ALTER TABLE events ALTER COLUMN prev_hash SET NOT NULL;
    CREATE TABLE receipts_before (id TEXT PRIMARY KEY, pseudonym TEXT NOT NULL,
        first_seq BIGINT NOT NULL REFERENCES events (seq), last_seq BIGINT NOT NULL REFERENCES events (seq),
        catalog_version BIGINT NOT NULL, created_at BIGINT NOT NULL, kid TEXT);
    INSERT INTO receipts_before
        SELECT r.id, e.pseudonym, r.first_seq, r.last_seq, r.catalog_version, r.created_at, k.kid
        FROM receipts r JOIN events e ON e.seq = r.first_seq LEFT JOIN receipt_kids k ON k.n = r.kid;
    DROP TABLE receipts;
    DROP TABLE receipt_kids;
    ALTER TABLE receipts_before RENAME TO receipts;
    ALTER INDEX receipts_before_pkey RENAME TO receipts_pkey;
    CREATE INDEX receipts_by_pseudonym ON receipts (pseudonym, created_at);";
