-- Consentry key store, schema version 3: the destinations' webhook signing secrets.

CREATE TABLE destination_secrets (
    destination_id TEXT PRIMARY KEY,
    secret         BLOB NOT NULL
) STRICT;
