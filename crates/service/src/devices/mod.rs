//! Devices: pairing (`/v1/subjects/{subject}/devices`), and what a paired device reads with its own token:
//! its signed consent snapshot (`/v1/device/consent`) and a stream of fresh ones
//! (`/v1/device/consent/stream`, Server-Sent Events).

mod hub;

pub use hub::*;

use std::time::Duration;

use consentry_core::SubjectId;

use consentry_store::DeviceRecord;

use serde::{Deserialize, Serialize};

use tokio::sync::broadcast::error::RecvError;

use utoipa::ToSchema;

use crate::auth::DeviceCaller;

use crate::error::{Error, Result};

use crate::state::Services;

/// Most categories or purposes one device declares.
pub const MAX_DECLARED: usize = 50;

/// How often an open stream checks that its device is still paired (an unpairing on this node ends it at
/// once; on another node within this).
pub const REVALIDATE: Duration = Duration::from_secs(5);

/// The media type of a compact JWS whose payload is a JWT claims set.
pub const JWT_MEDIA_TYPE: &str = "application/jwt";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairDevice {
    /// A label for people, 1 to 100 characters.
    pub name: String,
    /// What the device is (`speaker`, `fridge`, `tv`, ...): 1 to 40 lowercase letters, digits, `_`, `-`.
    pub kind: String,
    /// The data categories the device handles (catalogue keys); it may act on these and those under them.
    pub categories: Vec<String>,
    /// The purposes the device serves (catalogue keys); it may act for these and those under them.
    pub purposes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceOut {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub created_at: String,
}

impl From<DeviceRecord> for DeviceOut {
    fn from(d: DeviceRecord) -> Self {
        Self {
            id: d.id,
            name: d.name,
            kind: d.kind,
            categories: d.categories,
            purposes: d.purposes,
            created_at: d.created_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PairedDevice {
    #[serde(flatten)]
    pub device: DeviceOut,
    /// The device's token, shown only in this response. The device sends it as
    /// `Authorization: Bearer <token>`; unpairing revokes it.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<DeviceOut>,
}

#[derive(Debug, Deserialize)]
pub struct DevicePath {
    pub id: String,
}

/// Checks a pairing request against the catalogue; returns the declared keys sorted, without repeats.
pub fn validate(state: &Services, body: &PairDevice) -> Result<(Vec<String>, Vec<String>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::validation(
            "name",
            "must be 1 to 100 characters, none of them control characters",
        ));
    }
    let kind_ok = !body.kind.is_empty()
        && body.kind.len() <= 40
        && body.kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !kind_ok {
        return Err(Error::validation("kind", "must be 1 to 40 lowercase letters, digits, `_` or `-`"));
    }
    let view = state.catalog();
    let list = |field: &str, keys: &[String]| -> Result<Vec<String>> {
        if keys.is_empty() || keys.len() > MAX_DECLARED {
            return Err(Error::validation(field, format!("declare 1 to {MAX_DECLARED} keys")));
        }
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    };
    let categories = list("categories", &body.categories)?;
    let purposes = list("purposes", &body.purposes)?;
    if let Some(c) = categories.iter().find(|c| view.catalog.category(c).is_none()) {
        return Err(Error::UnknownCategory(c.clone()));
    }
    if let Some(p) = purposes.iter().find(|p| view.catalog.purpose(p).is_none()) {
        return Err(Error::UnknownPurpose(p.clone()));
    }
    Ok((categories, purposes))
}

/// Unpairs `subject`'s device `id` (its token stops working at once); `false` when they have no such
/// device. The API and the preference centre unpair through here.
pub async fn unpair_device(state: &Services, subject: &SubjectId, id: &str, by: &str) -> Result<bool> {
    if !state.store.delete_device(subject, id).await? {
        return Ok(false);
    }
    tracing::info!(device = %id, by = %by, "device unpaired");
    state.devices.unpaired(id);
    Ok(true)
}

/// A device's stream of fresh snapshots: the next one after every change that affects the device (and
/// at least before the last one sent expires); it ends when the device is unpaired or the node stops.
pub struct SnapshotStream {
    state: Services,
    device: DeviceCaller,
    changes: tokio::sync::broadcast::Receiver<DeviceChange>,
    /// The content tag last sent; `None` before the first.
    sent: Option<String>,
    sent_at: tokio::time::Instant,
}

impl SnapshotStream {
    /// Subscribes before the first snapshot is built, so no change between the two is missed.
    pub fn open(state: Services, device: DeviceCaller) -> Self {
        let changes = state.devices.subscribe();
        Self { state, device, changes, sent: None, sent_at: tokio::time::Instant::now() }
    }

    /// Waits for the next snapshot to send; `None` ends the stream (unpaired, or shutting down).
    pub async fn next(&mut self) -> Option<SignedSnapshot> {
        let renew = Duration::from_secs((self.state.config.device_snapshot_max_age_secs / 2).max(1));
        loop {
            let due = self.sent.is_some() && self.sent_at.elapsed() >= renew;
            if self.sent.is_some() && !due {
                let wait = renew.saturating_sub(self.sent_at.elapsed()).min(REVALIDATE);
                tokio::select! {
                    changed = self.changes.recv() => match changed {
                        Ok(DeviceChange::Subject(s)) if s == self.device.subject => {}
                        Ok(DeviceChange::Unpaired(id)) if id == self.device.device_id => return None,
                        Ok(DeviceChange::Everyone) | Err(RecvError::Lagged(_)) => {}
                        Ok(DeviceChange::Subject(_) | DeviceChange::Unpaired(_)) => continue,
                        Ok(DeviceChange::ShuttingDown) | Err(RecvError::Closed) => return None,
                    },
                    () = tokio::time::sleep(wait) => {
                        if self.sent_at.elapsed() < renew {
                            // A quiet moment: make sure the device is still paired (another node may
                            // have unpaired it).
                            match self.state.store.device(&self.device.device_id).await {
                                Ok(None) => return None,
                                Ok(Some(_)) => {}
                                Err(e) => tracing::warn!(error = %e, "checking a streaming device failed"),
                            }
                            continue;
                        }
                    }
                }
            }
            // Read again: the stream must end once the device is unpaired.
            let device = match self.state.store.device(&self.device.device_id).await {
                Ok(Some(record)) => DeviceCaller::from_record(record),
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, "reading a streaming device failed");
                    tokio::time::sleep(REVALIDATE).await;
                    continue;
                }
            };
            let signed = match snapshot(&self.state, &device).await {
                Ok(signed) => signed,
                Err(e) => {
                    tracing::warn!(error = %e, "building a device snapshot failed");
                    tokio::time::sleep(REVALIDATE).await;
                    continue;
                }
            };
            let renewing = self.sent_at.elapsed() >= renew;
            if renewing || self.sent.as_deref() != Some(signed.tag.as_str()) {
                self.sent = Some(signed.tag.clone());
                self.sent_at = tokio::time::Instant::now();
                return Some(signed);
            }
        }
    }
}
