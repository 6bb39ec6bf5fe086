-- People's identifiers (e-mail, phone, account, ...). The value is stored only encrypted (AES-256-GCM under
-- the subject's data key, which lives wrapped in the key store); it is found by its blind index, an
-- HMAC-SHA256 of its type and normalised value under a key derived from the key store's secret. The blind
-- index is the key: an identifier belongs to one subject at a time.

CREATE TABLE identifiers (
    blind_index BYTEA PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,    -- idn_<random hex>
    pseudonym   TEXT NOT NULL,
    kind        TEXT NOT NULL,           -- the identifier's type: email, phone, account, ...
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL          -- microseconds since the epoch
);

CREATE INDEX identifiers_by_subject ON identifiers (pseudonym, created_at);
