-- An erased subject's id is no longer kept for their outgoing messages: the erasure waits, for a bounded
-- time, for destinations to take them while the subject's key still names them; what is still pending
-- after that goes out without the id (`erased: true`). The ids kept so far are overwritten and dropped.
PRAGMA secure_delete = ON;
DELETE FROM erasure_notices;
DROP TABLE erasure_notices;
