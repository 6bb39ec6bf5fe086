-- Images of the decision engine's state (a binary snapshot, see consentry-core's engine/image.rs), so a
-- node starts from the newest and replays only the ledger after `covers`. One image is written whole in
-- one transaction, split into parts of a few MiB; older ones are deleted by the same transaction. An image
-- names subjects by pseudonym only, like the ledger.
CREATE TABLE engine_images (
    id         TEXT NOT NULL,
    covers     BIGINT NOT NULL,
    part       INTEGER NOT NULL,
    data       BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (id, part)
);
CREATE INDEX engine_images_by_covers ON engine_images (covers);
