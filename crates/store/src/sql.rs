//! SQL that both backends run as it is: column lists (read back by each backend's row mapping in this
//! order) and statements without placeholders. Statements with placeholders (`?1` on SQLite, `$1` on
//! PostgreSQL) or with the key store's schema (`ks.` and `consentry_keystore.`) stay with their backend.

/// The current-state key (purpose, scope) of a subject's latest event that set their jurisdiction: no
/// catalogue purpose is empty, so it never meets a consent's (nor does a `locate` event, which names no
/// purpose and has only this row). Readers of consents leave the empty purpose out.
pub(crate) const JURISDICTION_STATE: (&str, &str) = ("", "jurisdiction");

/// Every column of [`EVENT_COLUMNS`] but the last, `occurred_at`, which the current state's readers take
/// otherwise: one list, so that the three never differ in what comes before it (the row mappings read
/// them by position).
macro_rules! event_columns_before_time {
    () => {
        "e.seq, e.pseudonym, e.purpose, e.action, e.categories, e.channels, \
         e.recipients, e.notice, e.notice_version, e.notice_hash, e.collection_point, e.actor, e.recorded_at, \
         e.expires_at, \
         COALESCE((SELECT p.hash FROM events p WHERE p.seq = e.seq - 1), \
                  '0000000000000000000000000000000000000000000000000000000000000000') AS prev_hash, \
         e.hash, e.evidence, e.jurisdiction, "
    };
}

/// A ledger event's columns, on `events e`. Its `prev_hash` is not stored: it is the hash of the event
/// before it, or [`GENESIS_HASH`](consentry_core::ledger::GENESIS_HASH) for the first (the ledger has no
/// gaps and is never rewritten).
pub(crate) const EVENT_COLUMNS: &str = concat!(event_columns_before_time!(), "e.occurred_at");

pub(crate) const API_KEY_COLUMNS: &str = "id, name, scopes, secret_hash, created_at, revoked_at";
pub(crate) const NOTICE_COLUMNS: &str = "key, version, sha256, title, language, url, text, created_at";
pub(crate) const DESTINATION_COLUMNS: &str =
    "id, name, kind, url, target, event_types, paused, flagged, created_at";
/// A vault record's metadata columns, on `records r`.
pub(crate) const RECORD_COLUMNS: &str = "r.id, r.device_id, r.category, r.purpose, r.content_type, r.size, \
     r.collected_at, r.stored_at, r.delete_after";
/// A paired device's columns, on `devices d` joined to the key store's `subject_keys k`.
pub(crate) const DEVICE_COLUMNS: &str =
    "d.id, k.subject, d.name, d.kind, d.categories, d.purposes, d.created_at, d.last_seen";

/// A current statement's event, on `events e` joined to its `consent_state s`: the columns of
/// [`EVENT_COLUMNS`], but a live change whose effective time (`s.at`, the latest `recorded_at` up to its
/// position in the ledger) is later than its own `recorded_at` (the clock had stepped back) reads that time
/// as its `occurred_at`, so every reader of the current state (the engine warmed at start, device snapshots,
/// the export) orders it as the stored state does. Its `hash` is the stored one, taken over the event as
/// recorded, and its `prev_hash` is derived as there.
pub(crate) const STATE_EVENT_COLUMNS: &str = concat!(
    event_columns_before_time!(),
    "CASE WHEN e.occurred_at IS NULL AND s.at > e.recorded_at THEN s.at ELSE e.occurred_at END AS occurred_at"
);

/// The `occurred_at` of an event of the current state read a page at a time: a live change's effective
/// time is looked up in `consent_state` only for a live change (an imported one has its `occurred_at`).
macro_rules! paged_effective_time {
    () => {
        "COALESCE(e.occurred_at, \
                  (SELECT MAX(c.at) FROM consent_state c WHERE c.seq = e.seq AND c.at > e.recorded_at)) \
         AS occurred_at"
    };
}

/// [`STATE_EVENT_COLUMNS`] for an event joined to nothing but the state's positions (`seq`): a live
/// change's effective time is looked up in `consent_state` only for a live change (an imported one has its
/// `occurred_at`), so a page of the current state reads each statement's row of the state once, from the
/// index on `seq`, and no more.
pub(crate) const PAGED_STATE_EVENT_COLUMNS: &str =
    concat!(event_columns_before_time!(), paged_effective_time!());

/// An exported event's columns ([`ExportRow`](crate::model::ExportRow)) but the last, `occurred_at`, on
/// `events e` joined to the key store's `subject_keys k` and `subject_links l`: the subject and survivor,
/// then what a line holds. No hashes (nor the previous event's, a look-up per row) and no actor: an export
/// writes none of them.
macro_rules! export_columns_before_time {
    () => {
        "k.subject, l.survivor, e.seq, e.pseudonym, e.purpose, e.action, e.categories, e.channels, \
         e.recipients, e.notice, e.notice_version, e.collection_point, e.recorded_at, e.expires_at, \
         e.jurisdiction, "
    };
}

/// The columns of an exported event of the history.
pub(crate) const EXPORT_COLUMNS: &str = concat!(export_columns_before_time!(), "e.occurred_at");

/// The columns of an exported statement in force: a live change's effective time as
/// [`PAGED_STATE_EVENT_COLUMNS`] reads it.
pub(crate) const EXPORT_STATE_COLUMNS: &str = concat!(export_columns_before_time!(), paged_effective_time!());

/// The ledger's last event: `seq, hash` and the time no new event is recorded before (its `recorded_at`,
/// or the `ledger_floor` when later: the latest `recorded_at` when the upgrade to effective time ran); no
/// row while the ledger is empty. So among changes recorded live the later time is also the later position.
pub(crate) const LEDGER_HEAD_AT: &str = "SELECT e.seq, e.hash, \
     CASE WHEN f.at > e.recorded_at THEN f.at ELSE e.recorded_at END \
     FROM (SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1) AS e \
     CROSS JOIN (SELECT COALESCE(MAX(at), 0) AS at FROM ledger_floor) AS f";
/// The ledger's last event: `seq, hash`, no row while it is empty.
pub(crate) const LEDGER_HEAD: &str = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1";
/// The newest catalogue version, NULL before the first apply.
pub(crate) const CATALOG_VERSION: &str = "SELECT MAX(version) FROM catalogs";
/// The newest catalogue: `version, document, applied_at`.
pub(crate) const CURRENT_CATALOG: &str =
    "SELECT version, document, applied_at FROM catalogs ORDER BY version DESC LIMIT 1";
/// Every checkpoint: `events, head, jws, created_at`, ordered by `events`.
pub(crate) const CHECKPOINTS: &str = "SELECT events, head, jws, created_at FROM checkpoints ORDER BY events";
/// The number of dead deliveries.
pub(crate) const DEAD_LETTERS: &str = "SELECT COUNT(*) FROM deliveries WHERE status = 'dead'";

#[cfg(test)]
mod tests {
    /// The genesis hash written into the column lists is the ledger's.
    #[test]
    fn derived_prev_hash_starts_from_the_genesis_hash() {
        let genesis = format!("'{}'", consentry_core::ledger::GENESIS_HASH);
        assert!(super::EVENT_COLUMNS.contains(&genesis));
        assert!(super::STATE_EVENT_COLUMNS.contains(&genesis));
        assert!(super::PAGED_STATE_EVENT_COLUMNS.contains(&genesis));
    }
}
