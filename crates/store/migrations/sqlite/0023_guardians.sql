-- Children and guardians. A subject's age (a birth date or an age band) is stored only encrypted
-- (AES-256-GCM under the subject's data key, which lives wrapped in the key store); erasure deletes the
-- row and destroys the key. A guardian relation names both subjects by pseudonym and keeps only a SHA-256
-- of the evidence the brand gave.

CREATE TABLE subject_ages (
    pseudonym  TEXT PRIMARY KEY,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at INTEGER NOT NULL          -- microseconds since the epoch
) STRICT;

CREATE INDEX subject_ages_by_time ON subject_ages (updated_at, pseudonym);

CREATE TABLE guardians (
    child      TEXT NOT NULL,            -- pseudonym
    guardian   TEXT NOT NULL,            -- pseudonym
    evidence   BLOB,                     -- SHA-256 of the evidence's canonical JSON
    created_at INTEGER NOT NULL,
    PRIMARY KEY (child, guardian)
) STRICT;

CREATE INDEX guardians_by_guardian ON guardians (guardian, child);
