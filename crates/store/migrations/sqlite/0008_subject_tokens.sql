-- Subject tokens (the schema version this makes depends on the migrations before it). Tokens themselves
-- are never stored: only when a subject's tokens were last revoked, and which preference-centre links
-- were already exchanged for a session.

-- A subject's tokens issued at or before `revoked_at` (microseconds) are refused. Named by pseudonym
-- only; a row is kept until no token it refuses can still be alive (the longest lifetime after it).
CREATE TABLE token_revocations (
    pseudonym   TEXT PRIMARY KEY,
    revoked_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX token_revocations_by_time ON token_revocations (revoked_at);

-- The ids (`jti`) of links already exchanged; one insert wins. Kept until the link would have expired.
CREATE TABLE spent_links (
    jti         TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX spent_links_by_expiry ON spent_links (expires_at);
