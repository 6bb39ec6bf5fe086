-- Effective time for stores whose ledger recorded times went backwards by position (a clock stepped back,
-- before writers clamped to the last event). 0018 gave each stored statement its event's recorded_at, so
-- after that upgrade a withdrawal recorded a moment "earlier" than the grant it followed sorted before it,
-- and a live change made since could lose to an older one (consent wrongly reported as given).
--
-- A live change (no occurred_at) now takes effect at the latest recorded_at up to its position in the
-- ledger (a running maximum by seq): among live changes the order is the ledger's again, as it was before
-- 0018. The current state is rebuilt from the ledger with that rule (the latest effective time, then seq,
-- per subject, purpose and scope; a subject's jurisdiction from the latest event that set one), which also
-- restores a live change that a wrongly later older one kept out since 0018.
DELETE FROM consent_state;
INSERT INTO consent_state (pseudonym, purpose, scope, seq, at)
SELECT pseudonym, purpose, scope, seq, at FROM (
    SELECT pseudonym, purpose, scope, seq, at,
           ROW_NUMBER() OVER (PARTITION BY pseudonym, purpose, scope ORDER BY at DESC, seq DESC) AS n
    FROM (
        SELECT seq, pseudonym, purpose, categories || '|' || channels || '|' || recipients AS scope, action,
               COALESCE(occurred_at, MAX(recorded_at) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING)) AS at
        FROM events
    ) AS effective
    WHERE action <> 'locate'
) AS latest WHERE n = 1;
INSERT INTO consent_state (pseudonym, purpose, scope, seq, at)
SELECT pseudonym, '', 'jurisdiction', seq, at FROM (
    SELECT pseudonym, seq, at, ROW_NUMBER() OVER (PARTITION BY pseudonym ORDER BY at DESC, seq DESC) AS n
    FROM (
        SELECT seq, pseudonym, jurisdiction,
               COALESCE(occurred_at, MAX(recorded_at) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING)) AS at
        FROM events
    ) AS effective
    WHERE jurisdiction IS NOT NULL
) AS latest WHERE n = 1;
-- No live change is recorded before the latest recorded_at so far: writers take the later of this and the
-- last event's recorded_at, so a change made after the upgrade sorts after every change before it.
CREATE TABLE ledger_floor (at INTEGER NOT NULL) STRICT;
INSERT INTO ledger_floor SELECT COALESCE(MAX(recorded_at), 0) FROM events;
