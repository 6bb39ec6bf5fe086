-- Key store: subjects linked into another (one person known under two ids). `subject` is the old id, an
-- alias that every node resolves to `survivor`. Kept here, since both name people; an erasure of either
-- deletes the row.

CREATE TABLE subject_links (
    subject    TEXT PRIMARY KEY,
    survivor   TEXT NOT NULL,
    linked_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX subject_links_by_survivor ON subject_links (survivor);
