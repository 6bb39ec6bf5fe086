-- Consentry on PostgreSQL: the outbox keeps only what a destination can still need (docs/propagation.md).
-- A destination's origin is the last outbox id written before it was created: it may replay only later
-- messages. Destinations made before this migration keep 0 (whatever the outbox still holds).
ALTER TABLE destinations ADD COLUMN origin BIGINT NOT NULL DEFAULT 0;
-- "Is an earlier message of this subject dead-lettered?" The sweep keeps a dead letter's message and the
-- subject's later ones, which replaying the dead letter sends again. Dead letters are few.
CREATE INDEX deliveries_dead_by_subject ON deliveries (pseudonym, outbox_id) WHERE status = 'dead';
