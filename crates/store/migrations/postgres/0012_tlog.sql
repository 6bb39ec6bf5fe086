-- The ledger's Merkle tree (RFC 9162 §2.1): every complete subtree's hash, leaf i being event seq i + 1.
-- Written in the append transaction with the events, under the ledger lock; a node never changes once
-- complete. The nodes of an existing ledger are built by the store when it opens.
CREATE TABLE tlog_nodes (
    level SMALLINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TRIGGER tlog_nodes_append_only BEFORE UPDATE OR DELETE ON tlog_nodes
    FOR EACH ROW EXECUTE FUNCTION consentry_events_append_only();

-- Signed tree heads: C2SP checkpoints (signed notes) of the tree at `size` leaves.
CREATE TABLE tlog_checkpoints (
    size       BIGINT PRIMARY KEY,
    root       BYTEA NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
