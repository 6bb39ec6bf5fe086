-- The console's catalogue diff asks how many people's consents rest on one version of a notice: the ledger's
-- events of that version, found by this index (only events with a notice), joined to the current state by
-- its sequence number, never a scan of the ledger.
CREATE INDEX events_by_notice ON events (notice, notice_version) WHERE notice IS NOT NULL;
