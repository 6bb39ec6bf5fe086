-- When a device last used its token (microseconds), written at most once a minute per device; NULL until
-- it first does. The console shows it on a person's page.
ALTER TABLE devices ADD COLUMN last_seen BIGINT;
