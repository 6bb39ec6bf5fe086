//! The conformance suite: behaviour every [`Store`](crate::Store) backend must show, written against the
//! trait alone.
//!
//! A backend's tests call [`conformance_suite!`](crate::conformance_suite) (and
//! [`conformance_vault_suite!`](crate::conformance_vault_suite)) with an async expression that yields a
//! fresh, empty store; the macro expands to one `#[tokio::test]` per check, each a function re-exported
//! here from the file of its part of the trait.

mod activity;
mod console;
mod devices;
mod dsr;
mod export;
mod fixtures;
mod guardians;
mod households;
mod identifiers;
mod images;
mod import;
mod ledger;
mod links;
mod outbox;
mod outbox_reach;
mod setup;
mod stances;
mod tlog;
mod tokens;
mod vault;
mod verifications;

pub use self::activity::{access_log_newest_first_with_pages, check_counts_add_up};
pub use self::console::{
    console_sessions_expire_end_and_follow_their_key, purpose_checks_add_up,
    rollups_add_up_under_their_cursor,
};
pub use self::devices::{devices_pair_list_delete, devices_rehash_token};
pub use self::dsr::{
    erasure_destroys_the_key_and_keeps_the_chain, requests_lifecycle, requests_list_and_overdue,
};
pub use self::export::export_pages_hold_what_the_ledger_holds;
pub use self::guardians::{ages_and_guardians, coming_of_age_is_announced_once};
pub use self::households::{households_are_renamed_and_deleted, households_members_and_devices};
pub use self::identifiers::identifiers_belong_to_one_subject;
pub use self::images::engine_images_newest_whole_and_pseudonyms_paged;
pub use self::import::{
    imported_notice_texts_never_become_current, imports_place_each_change_once_in_time_order,
};
pub use self::ledger::{
    append_and_history, checkpoints_idempotent_and_ordered, concurrent_appends_keep_one_chain,
    concurrent_sealed_appends, current_state, expiries_and_leases, failing_sealer_fails_only_its_request,
    pages, receipts_commit_with_their_events,
};
pub use self::links::{links_merge_move_and_alias, links_see_every_racing_write};
pub use self::outbox::{
    claims_keep_each_subjects_order, concurrent_claimers_never_share, delete_destination_cascades,
    destinations_crud, fan_out_honours_filter_and_cursor, leases_expire, outbox_commits_with_its_events,
    outbox_lag_and_dead_letters, paused_destinations_are_not_claimed, replay_from_id_and_time,
    replaying_a_dead_letter_resends_what_followed,
};
pub use self::outbox_reach::{
    outbox_keeps_only_what_a_destination_wants, outbox_sweep_keeps_what_is_still_needed,
    slim_messages_claim_their_ledger_event,
};
pub use self::setup::{
    api_keys, catalog_versions, initialise_once, key_pepper_and_rehash, signing_key_rotation,
};
pub use self::stances::{
    imports_announce_only_what_is_in_force, objections_stand_apart_in_the_current_state,
};
pub use self::tlog::{tlog_checkpoints_one_per_size, tlog_tree_follows_the_ledger};
pub use self::tokens::{links_are_spent_once, token_revocations_per_subject};
pub use self::vault::{
    vault_binds_one_kek, vault_concurrent_puts_share_one_key, vault_due_records_go_with_announcements,
    vault_erasure_shreds_the_data_key, vault_put_read_list_delete,
};
pub use self::verifications::verifications_limit_attempts_expire_and_end;

/// Expands to one test per conformance check. `$make` is an async expression yielding
/// `Option<(Arc<dyn Store>, guard)>`: the guard lives until the test ends (a temp folder, a test database);
/// `None` skips the test (a service is unreachable and not required).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            initialise_once, expiries_and_leases, api_keys, catalog_versions, append_and_history, current_state,
            concurrent_appends_keep_one_chain, pages, receipts_commit_with_their_events,
            failing_sealer_fails_only_its_request, concurrent_sealed_appends, signing_key_rotation,
            checkpoints_idempotent_and_ordered, access_log_newest_first_with_pages, check_counts_add_up,
            outbox_commits_with_its_events, destinations_crud, fan_out_honours_filter_and_cursor,
            claims_keep_each_subjects_order, leases_expire, concurrent_claimers_never_share,
            replay_from_id_and_time, delete_destination_cascades, paused_destinations_are_not_claimed,
            outbox_lag_and_dead_letters, replaying_a_dead_letter_resends_what_followed,
            outbox_keeps_only_what_a_destination_wants, outbox_sweep_keeps_what_is_still_needed,
            slim_messages_claim_their_ledger_event, requests_lifecycle, requests_list_and_overdue, erasure_destroys_the_key_and_keeps_the_chain,
            devices_pair_list_delete, key_pepper_and_rehash, devices_rehash_token,
            token_revocations_per_subject, links_are_spent_once,
            console_sessions_expire_end_and_follow_their_key, purpose_checks_add_up, rollups_add_up_under_their_cursor,
            tlog_tree_follows_the_ledger, tlog_checkpoints_one_per_size,
            verifications_limit_attempts_expire_and_end,
            imports_place_each_change_once_in_time_order, imported_notice_texts_never_become_current,
            objections_stand_apart_in_the_current_state, imports_announce_only_what_is_in_force,
            engine_images_newest_whole_and_pseudonyms_paged);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = $make.await else { return };
                $crate::testing::conformance::$name(store.clone()).await;
                store.close().await;
            }
        )*
    };
}
