-- The ledger's Merkle tree (RFC 9162 §2.1): every complete subtree's hash, leaf i being event seq i + 1.
-- Written in the append transaction with the events; a node never changes once complete. The nodes of
-- an existing ledger are built by the store when it opens (a hash SQLite cannot compute here).
CREATE TABLE tlog_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TRIGGER tlog_nodes_no_update BEFORE UPDATE ON tlog_nodes
BEGIN SELECT RAISE(ABORT, 'tree nodes are append-only'); END;
CREATE TRIGGER tlog_nodes_no_delete BEFORE DELETE ON tlog_nodes
BEGIN SELECT RAISE(ABORT, 'tree nodes are append-only'); END;

-- Signed tree heads: C2SP checkpoints (signed notes) of the tree at `size` leaves.
CREATE TABLE tlog_checkpoints (
    size       INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
