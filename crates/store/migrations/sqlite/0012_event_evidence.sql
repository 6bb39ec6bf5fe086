-- What a change rests on besides its notice: `sha256:<hex>` of the IAB TCF or GPP string a signal's
-- events were read from. Hashed into the event only when present, so earlier events keep their hashes.
ALTER TABLE events ADD COLUMN evidence TEXT;
