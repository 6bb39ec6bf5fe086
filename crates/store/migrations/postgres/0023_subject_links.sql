-- Key store: subjects linked into another (one person known under two ids). `subject` is the old id, an
-- alias that every node resolves to `survivor`; an append for it is refused. Kept in the key store schema,
-- since both name people; an erasure of the survivor erases its aliases and deletes the rows.

CREATE TABLE consentry_keystore.subject_links (
    subject    TEXT PRIMARY KEY,
    survivor   TEXT NOT NULL,
    linked_at  BIGINT NOT NULL
);
CREATE INDEX subject_links_by_survivor ON consentry_keystore.subject_links (survivor);
