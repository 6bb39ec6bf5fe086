-- Objections and restrictions kept apart from the consent choice. The current state held one statement
-- per subject, purpose and scope, so a withdrawal (or denial, or grant) after an objection or restriction
-- of the same scope took its place: a purpose on another legal basis that the objection bound was allowed
-- again although the person had objected. Now the state holds the latest statement per subject, purpose,
-- scope and stance: '' for the consent choice (grant, renew, deny, withdraw, expire), 'object' and
-- 'restrict' for the others.
--
-- The state of every subject that holds one is rebuilt from the ledger by the rule of 0024 (the latest
-- effective time, then seq), now per stance, which brings back every objection and restriction a later
-- choice had replaced. A subject without state rows (a record linked into another, whose state the link
-- forgot) stays without. Jurisdiction rows are kept as they are.
ALTER TABLE consent_state ADD COLUMN stance TEXT NOT NULL DEFAULT '';
ALTER TABLE consent_state DROP CONSTRAINT consent_state_pkey;
ALTER TABLE consent_state ADD PRIMARY KEY (pseudonym, purpose, scope, stance);
CREATE TEMPORARY TABLE consent_state_subjects ON COMMIT DROP AS SELECT DISTINCT pseudonym FROM consent_state;
DELETE FROM consent_state WHERE purpose <> '';
INSERT INTO consent_state (pseudonym, purpose, scope, stance, seq, at)
SELECT pseudonym, purpose, scope, stance, seq, at FROM (
    SELECT pseudonym, purpose, scope, stance, seq, at,
           ROW_NUMBER() OVER (PARTITION BY pseudonym, purpose, scope, stance ORDER BY at DESC, seq DESC) AS n
    FROM (
        SELECT seq, pseudonym, purpose, categories || '|' || channels || '|' || recipients AS scope, action,
               CASE action WHEN 'object' THEN 'object' WHEN 'restrict' THEN 'restrict' ELSE '' END AS stance,
               COALESCE(occurred_at, MAX(recorded_at) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING)) AS at
        FROM events
    ) AS effective
    WHERE action <> 'locate' AND pseudonym IN (SELECT pseudonym FROM consent_state_subjects)
) AS latest WHERE n = 1;
