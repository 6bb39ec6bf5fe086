-- The evidence an imported change came with (the original receipt, IP address, user agent, form id), kept
-- beside its event: the event carries only `sha256:<hex>` of it. Stored only encrypted (AES-256-GCM under
-- the subject's data key, bound to the event's id and the subject's pseudonym); erasure deletes the rows
-- and destroys the key, and a link re-seals them under the survivor's key.

CREATE TABLE event_evidence (
    seq        BIGINT PRIMARY KEY REFERENCES events (seq),
    pseudonym  TEXT NOT NULL,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL
);

CREATE INDEX event_evidence_by_subject ON event_evidence (pseudonym, seq);
