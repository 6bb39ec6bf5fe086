-- Verifications of people without a token (the schema version this makes depends on the migrations
-- before it). A row per start, known identifier or not; no identifier and no code, only keyed hashes.
CREATE TABLE verifications (
    id                TEXT PRIMARY KEY,
    -- The identifier's blind index (as in `identifiers`), for the limit per identifier.
    identifier_index  BLOB NOT NULL,
    -- A keyed hash of the client address, for the limit per address.
    client_index      BLOB NOT NULL,
    -- A keyed hash of the code sent.
    code_hash         BLOB NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    used_at           INTEGER
) STRICT;
CREATE INDEX verifications_by_identifier ON verifications (identifier_index, created_at);
CREATE INDEX verifications_by_client ON verifications (client_index, created_at);
CREATE INDEX verifications_by_time ON verifications (created_at);
