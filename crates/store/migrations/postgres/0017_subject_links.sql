-- Key store: subjects linked into another (one person known under two ids). `subject` is the old id, an
-- alias that every node resolves to `survivor`. Kept in the key store schema, since both name people; an
-- erasure of either deletes the row.

CREATE TABLE consentry_keystore.subject_links (
    subject    TEXT PRIMARY KEY,
    survivor   TEXT NOT NULL,
    linked_at  BIGINT NOT NULL
);
CREATE INDEX subject_links_by_survivor ON consentry_keystore.subject_links (survivor);
