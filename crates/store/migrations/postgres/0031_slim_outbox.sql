-- Consentry on PostgreSQL: a consent message's outbox row keeps only what its ledger event cannot give
-- (docs/propagation.md). `seq` names the ledger event the message announces and `source` the CloudEvents
-- source it was queued with; its `payload` is then only the subject's resulting decisions (`overall` and
-- `channels`), which depended on the state when the change was made. The dispatcher builds the CloudEvent
-- again from the event. Other messages (`record.deleted`, `subject.erased`, `request.*`,
-- `consent.imported`) keep the whole CloudEvent and no seq.
ALTER TABLE outbox ADD COLUMN seq BIGINT, ADD COLUMN source TEXT;
-- The rows queued before stay deliverable: each consent message's decisions stay as their JSON text
-- (`json`, not `jsonb`, keeps keys in their order), its event is the one its payload names.
UPDATE outbox o
SET seq = (p.doc #>> '{data,event,seq}')::bigint,
    source = p.doc ->> 'source',
    payload = json_build_object('overall', p.doc #> '{data,decision,overall}',
                                'channels', p.doc #> '{data,decision,channels}')::text
FROM (SELECT id, payload::json AS doc FROM outbox
      WHERE event_type LIKE 'consent.%' AND event_type <> 'consent.imported') p
WHERE o.id = p.id
  AND json_typeof(p.doc #> '{data,event,seq}') = 'number'
  AND (p.doc #>> '{data,event,seq}') ~ '^[0-9]+$'
  AND json_typeof(p.doc -> 'source') = 'string'
  AND json_typeof(p.doc #> '{data,decision,overall}') IS NOT NULL
  AND json_typeof(p.doc #> '{data,decision,channels}') = 'array'
  AND EXISTS (SELECT 1 FROM events e WHERE e.seq = (p.doc #>> '{data,event,seq}')::bigint);
