-- A known child's coming of age goes downstream once (`subject.came_of_age`). Every stated age waits to be
-- looked at (`coming_of_age_pending`) until the subject has come of age: then the row records when
-- (`came_of_age_at`, set in the transaction that queues the event) or, for someone who was no child when
-- the age was stated, nothing. An age stated again waits again only if no coming of age was announced.
-- Ages stated before this migration wait too, so a child known before it is announced as well.

ALTER TABLE subject_ages
    ADD COLUMN coming_of_age_pending BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN came_of_age_at BIGINT;

CREATE INDEX subject_ages_pending ON subject_ages (updated_at, pseudonym) WHERE coming_of_age_pending;
