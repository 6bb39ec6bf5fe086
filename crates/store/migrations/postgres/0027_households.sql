-- Households: groups of subjects that share devices. The label is stored only encrypted (AES-256-GCM under
-- the key-encryption key, bound to the household's id); members are named by pseudonym, each with a random
-- handle the household's devices know them by; household devices are kept apart from subjects' devices.

CREATE TABLE households (
    id          TEXT PRIMARY KEY,        -- hh_<random hex>
    name_nonce  BYTEA NOT NULL,
    name_sealed BYTEA NOT NULL,
    created_at  BIGINT NOT NULL         -- microseconds since the epoch
);

CREATE TABLE household_members (
    household   TEXT NOT NULL REFERENCES households (id),
    pseudonym   TEXT NOT NULL,
    handle      TEXT NOT NULL UNIQUE,    -- hm_<random hex>
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (household, pseudonym)
);
CREATE INDEX household_members_by_pseudonym ON household_members (pseudonym);

CREATE TABLE household_devices (
    id          TEXT PRIMARY KEY,
    household   TEXT NOT NULL REFERENCES households (id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    categories  TEXT NOT NULL,           -- JSON array of data category keys
    purposes    TEXT NOT NULL,           -- JSON array of purpose keys
    token_hash  BYTEA NOT NULL UNIQUE,    -- HMAC-SHA256 under the key store's pepper
    created_at  BIGINT NOT NULL
);
CREATE INDEX household_devices_by_household ON household_devices (household, created_at);
