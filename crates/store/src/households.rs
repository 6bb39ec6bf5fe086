//! Households: a group of subjects sharing devices (a family's speaker, a TV in the living room). A
//! household has an operator's label, stored only encrypted (under the key-encryption key, bound to the
//! household's id: a label may well be a family's name), its members by pseudonym, each with a random
//! **handle** the household's devices know them by, and its own paired devices (token hashes as for a
//! subject's devices). Erasure of a member deletes their memberships; a member whose subject key is gone
//! is never read back.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};

use crate::common::random_bytes;
use crate::error::Result;
use crate::vault::Kek;

/// A household as read back, its label decrypted. `Debug` hides the label.
#[derive(Clone, PartialEq, Eq)]
pub struct HouseholdRecord {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    /// Oldest first.
    pub members: Vec<HouseholdMember>,
}

impl std::fmt::Debug for HouseholdRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HouseholdRecord")
            .field("id", &self.id)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// A member of a household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdMember {
    pub subject: SubjectId,
    /// `hm_` and 64 random bits in hex: what the household's devices know the member by.
    pub handle: String,
    pub added_at: Timestamp,
}

/// What [`HouseholdStore::add_member`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddedMember {
    /// Added with the handle given.
    Added,
    /// Already a member: nothing changed; their handle.
    Existing(String),
    /// No such household.
    NoHousehold,
}

/// What [`HouseholdStore::delete_household`] removed, read in its transaction: exactly the members and
/// devices the household had when it went, whatever was added or removed just before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedHousehold {
    /// The members whose membership ended (an erased member, whose subject is unknown, is not listed).
    pub members: Vec<SubjectId>,
    /// The ids of its devices, whose tokens stopped working, ordered.
    pub devices: Vec<String>,
}

/// A paired device of a household. It acts for no one subject: the store keeps it apart from subjects'
/// devices, so no subject's device route finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdDevice {
    pub household: String,
    pub id: String,
    pub name: String,
    pub kind: String,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub created_at: Timestamp,
}

/// A household device to pair, with the keyed hash of its token. `Debug` hides the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NewHouseholdDevice {
    pub device: HouseholdDevice,
    pub token_hash: [u8; 32],
}

impl std::fmt::Debug for NewHouseholdDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewHouseholdDevice").field("device", &self.device).finish_non_exhaustive()
    }
}

/// A fresh household id: `hh_` and 64 random bits in hex.
pub fn new_household_id() -> Result<String> {
    Ok(format!("hh_{}", hex(&random_bytes::<8>()?)))
}

/// A fresh member handle: `hm_` and 64 random bits in hex.
pub fn new_member_handle() -> Result<String> {
    Ok(format!("hm_{}", hex(&random_bytes::<8>()?)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Storage of households, a part of every [`Store`](crate::Store).
#[async_trait]
pub trait HouseholdStore: Send + Sync {
    /// Stores a new household with no members, its label sealed under `kek`.
    async fn create_household(&self, kek: &Kek, id: &str, name: &str, at: Timestamp) -> Result<()>;
    /// The household with its members (erased ones are gone), its label decrypted.
    async fn household(&self, kek: &Kek, id: &str) -> Result<Option<HouseholdRecord>>;
    /// Households with an id after `after` (all when `None`), ordered by id, at most `limit`.
    async fn households_page(
        &self,
        kek: &Kek,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<HouseholdRecord>>;
    /// Replaces household `id`'s label (sealed under `kek`); false when there is no such household.
    async fn rename_household(&self, kek: &Kek, id: &str, name: &str) -> Result<bool>;
    /// Deletes household `id` with its memberships and its paired devices (whose tokens stop working), in
    /// one transaction; the members and devices it had then (read in that transaction, so a member added
    /// at the same moment is either listed or never added), or `None` when there was no such household.
    async fn delete_household(&self, id: &str) -> Result<Option<DeletedHousehold>>;
    /// Makes `subject` a member under `handle` (creating their pseudonym when they have none).
    async fn add_member(
        &self,
        household: &str,
        subject: &SubjectId,
        handle: &str,
        at: Timestamp,
    ) -> Result<AddedMember>;
    /// Takes `subject` out of the household; false when they were not a member.
    async fn remove_member(&self, household: &str, subject: &SubjectId) -> Result<bool>;
    /// The ids of the households `subject` is a member of, ordered.
    async fn subject_households(&self, subject: &SubjectId) -> Result<Vec<String>>;

    /// Pairs a device with its household; false (nothing stored) when the household is gone. An id or
    /// token hash already stored is a [`crate::StoreError::Conflict`].
    async fn create_household_device(&self, device: NewHouseholdDevice) -> Result<bool>;
    /// The household's devices, oldest first.
    async fn household_devices(&self, household: &str) -> Result<Vec<HouseholdDevice>>;
    async fn household_device(&self, id: &str) -> Result<Option<HouseholdDevice>>;
    /// The household device whose token has this stored hash (HMAC-SHA256 under the key pepper).
    async fn household_device_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<HouseholdDevice>>;
    /// Unpairs the household's device `id`; false when it has no such device.
    async fn delete_household_device(&self, household: &str, id: &str) -> Result<bool>;
    /// Every household device with an id after `after`, ordered by id, at most `limit`.
    async fn household_devices_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<HouseholdDevice>>;
}
