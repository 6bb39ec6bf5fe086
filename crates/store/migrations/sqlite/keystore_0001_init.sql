-- Consentry key store (a file apart from the data), schema version 1: per-subject pseudonym keys.
-- Destroying a subject's row cuts the link between the ledger's pseudonym and the person.

CREATE TABLE subject_keys (
    subject       TEXT PRIMARY KEY,
    pseudonym     TEXT NOT NULL UNIQUE,
    pseudonym_key BLOB NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
