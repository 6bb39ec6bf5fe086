-- Objections and restrictions kept apart from the consent choice. The current state held one statement
-- per subject, purpose and scope, so a withdrawal (or denial, or grant) after an objection or restriction
-- of the same scope took its place: a purpose on another legal basis that the objection bound was allowed
-- again although the person had objected. Now the state holds the latest statement per subject, purpose,
-- scope and stance: '' for the consent choice (grant, renew, deny, withdraw, expire), 'object' and
-- 'restrict' for the others.
--
-- The state of every subject that holds one is rebuilt from the ledger by the rule of 0022 (the latest
-- effective time, then seq), now per stance, which brings back every objection and restriction a later
-- choice had replaced. A subject without state rows (a record linked into another, whose state the link
-- forgot) stays without. Jurisdiction rows are kept as they are.
CREATE TABLE consent_state_stances (
    pseudonym TEXT NOT NULL,
    purpose   TEXT NOT NULL,
    scope     TEXT NOT NULL,
    stance    TEXT NOT NULL,
    seq       INTEGER NOT NULL REFERENCES events (seq),
    at        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pseudonym, purpose, scope, stance)
) STRICT, WITHOUT ROWID;
INSERT INTO consent_state_stances (pseudonym, purpose, scope, stance, seq, at)
SELECT pseudonym, '', scope, '', seq, at FROM consent_state WHERE purpose = '';
INSERT INTO consent_state_stances (pseudonym, purpose, scope, stance, seq, at)
SELECT pseudonym, purpose, scope, stance, seq, at FROM (
    SELECT pseudonym, purpose, scope, stance, seq, at,
           ROW_NUMBER() OVER (PARTITION BY pseudonym, purpose, scope, stance ORDER BY at DESC, seq DESC) AS n
    FROM (
        SELECT seq, pseudonym, purpose, categories || '|' || channels || '|' || recipients AS scope, action,
               CASE action WHEN 'object' THEN 'object' WHEN 'restrict' THEN 'restrict' ELSE '' END AS stance,
               COALESCE(occurred_at, MAX(recorded_at) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING)) AS at
        FROM events
    ) AS effective
    WHERE action <> 'locate' AND pseudonym IN (SELECT pseudonym FROM consent_state)
) AS latest WHERE n = 1;
DROP TABLE consent_state;
ALTER TABLE consent_state_stances RENAME TO consent_state;
CREATE INDEX consent_state_by_seq ON consent_state (seq);
