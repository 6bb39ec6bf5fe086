-- Delivery attempts per destination and minute (minutes since 1970-01-01, UTC): how many succeeded and
-- how many failed, added in the transaction that records the attempts, for the console's success rates of
-- the last hour and day. The dispatcher deletes minutes older than two days, so the table stays bounded.
CREATE TABLE delivery_attempts (
    destination_id  TEXT NOT NULL,
    minute          BIGINT NOT NULL,
    ok              BIGINT NOT NULL,
    failed          BIGINT NOT NULL,
    PRIMARY KEY (destination_id, minute)
);
CREATE INDEX delivery_attempts_by_minute ON delivery_attempts (minute);
