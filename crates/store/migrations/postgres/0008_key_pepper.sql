-- Key store: the pepper that keys the stored hashes of API keys and device tokens (HMAC-SHA256), made
-- once per store on first use. It lives in the key-store schema, never with the data, so a copy of the
-- data tables alone does not allow guessing secrets offline.

CREATE TABLE consentry_keystore.key_pepper (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    pepper BYTEA NOT NULL
);
