-- Children and guardians. A subject's age (a birth date or an age band) is stored only encrypted
-- (AES-256-GCM under the subject's data key, which lives wrapped in the key store); erasure deletes the
-- row and destroys the key. A guardian relation names both subjects by pseudonym and keeps only a SHA-256
-- of the evidence the brand gave.

CREATE TABLE subject_ages (
    pseudonym  TEXT PRIMARY KEY,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    updated_at BIGINT NOT NULL           -- microseconds since the epoch
);

CREATE INDEX subject_ages_by_time ON subject_ages (updated_at, pseudonym);

CREATE TABLE guardians (
    child      TEXT NOT NULL,            -- pseudonym
    guardian   TEXT NOT NULL,            -- pseudonym
    evidence   BYTEA,                    -- SHA-256 of the evidence's canonical JSON
    created_at BIGINT NOT NULL,
    PRIMARY KEY (child, guardian)
);

CREATE INDEX guardians_by_guardian ON guardians (guardian, child);
