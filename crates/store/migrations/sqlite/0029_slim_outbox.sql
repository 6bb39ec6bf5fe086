-- Consentry embedded store: a consent message's outbox row keeps only what its ledger event cannot give
-- (docs/propagation.md). `seq` names the ledger event the message announces and `source` the CloudEvents
-- source it was queued with; its `payload` is then only the subject's resulting decisions (`overall` and
-- `channels`), which depended on the state when the change was made. The dispatcher builds the CloudEvent
-- again from the event. Other messages (`record.deleted`, `subject.erased`, `request.*`,
-- `consent.imported`) keep the whole CloudEvent and no seq.
ALTER TABLE outbox ADD COLUMN seq INTEGER;
ALTER TABLE outbox ADD COLUMN source TEXT;
-- The rows queued before stay deliverable: each consent message's decisions stay (their JSON text, keys in
-- their order, so the message is built again as it was stored), its event is the one its payload names.
UPDATE outbox
SET seq = json_extract(payload, '$.data.event.seq'),
    source = json_extract(payload, '$.source'),
    payload = json_object('overall', json(payload -> '$.data.decision.overall'),
                          'channels', json(payload -> '$.data.decision.channels'))
WHERE event_type LIKE 'consent.%' AND event_type <> 'consent.imported'
  AND json_valid(payload)
  AND json_type(payload, '$.data.event.seq') = 'integer'
  AND json_type(payload, '$.source') = 'text'
  AND json_type(payload, '$.data.decision.overall') IS NOT NULL
  AND json_type(payload, '$.data.decision.channels') = 'array'
  AND EXISTS (SELECT 1 FROM events e WHERE e.seq = json_extract(outbox.payload, '$.data.event.seq'));
