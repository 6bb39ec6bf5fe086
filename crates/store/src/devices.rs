//! Paired devices: a thing bound to one subject (by pseudonym), with the data categories and purposes it
//! declared and the keyed hash (HMAC-SHA256 under the key store's pepper) of its token. The token itself is shown once and never stored.

use async_trait::async_trait;
use consentry_core::{SubjectId, Timestamp};
use serde::Serialize;

use crate::error::Result;

/// A paired device as read back. `subject` comes from the key store: a device whose subject was erased is
/// not found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    pub id: String,
    #[serde(skip)]
    pub subject: SubjectId,
    pub name: String,
    pub kind: String,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub created_at: Timestamp,
    /// When it last used its token (kept to the minute: [`DeviceStore::device_seen`]); `None` until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
}

/// A device to pair, with the keyed hash of its token. `Debug` hides the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NewDevice {
    pub record: DeviceRecord,
    pub token_hash: [u8; 32],
}

impl std::fmt::Debug for NewDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDevice").field("record", &self.record).finish_non_exhaustive()
    }
}

/// Storage of paired devices.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Pairs a device under its subject's pseudonym, creating one for a subject without. An `id` or token
    /// hash already stored is a [`crate::StoreError::Conflict`].
    async fn create_device(&self, device: NewDevice) -> Result<()>;
    /// The subject's devices, oldest first.
    async fn subject_devices(&self, subject: &SubjectId) -> Result<Vec<DeviceRecord>>;
    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>>;
    /// The device whose token has this stored hash (HMAC-SHA256 under the store's key pepper; devices
    /// paired before that hold a plain SHA-256 until they are next used).
    async fn device_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<DeviceRecord>>;
    /// Replaces the stored token hash of device `id`, if it is still `old`; returns whether it did.
    async fn rehash_device_token(&self, id: &str, old: &[u8; 32], new: &[u8; 32]) -> Result<bool>;
    /// Unpairs the subject's device `id` (its token stops working at once); false when the subject has
    /// no such device.
    async fn delete_device(&self, subject: &SubjectId, id: &str) -> Result<bool>;
    /// Every paired device with an id after `after` (all when `None`), ordered by id, at most `limit`.
    async fn devices_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<DeviceRecord>>;
    /// Marks device `id` seen at `at`, unless it was seen at or after `at` already.
    async fn device_seen(&self, id: &str, at: Timestamp) -> Result<()>;
}

/// Parses a stored JSON list of keys.
pub(crate) fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}
