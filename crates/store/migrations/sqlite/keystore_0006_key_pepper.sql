-- Key store: the pepper that keys the stored hashes of API keys and device tokens (HMAC-SHA256), made
-- once per store on first use. It lives here, never in the data file, so a copy of the data file alone
-- does not allow guessing secrets offline.

CREATE TABLE key_pepper (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    pepper BLOB NOT NULL
) STRICT;
