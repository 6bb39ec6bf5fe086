//! Devices: pairing a device with a subject, listing and unpairing them, and what a paired device reads
//! with its own token: its signed consent snapshot and a stream of fresh ones. The API's device routes
//! call one function here each; the preference centre unpairs through [`unpair_device`].

pub mod broadcast;
mod hub;

pub use broadcast::{DeviceChange, DeviceHub, StreamSlot};
pub use hub::*;

use std::time::Duration;

use consentry_core::{SubjectId, Timestamp};
use consentry_store::{DeviceRecord, NewDevice};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use crate::access::Reader;
use crate::auth::{DeviceCaller, HouseholdDeviceCaller, Principal, Scope, make_device_token};
use crate::error::{Error, Result};
use crate::state::Services;

/// Most categories or purposes one device declares.
const MAX_DECLARED: usize = 50;

/// How often an open stream checks that its device is still paired (an unpairing on this node ends it at
/// once; on another node within this).
const REVALIDATE: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairDevice {
    /// A label for people, 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")]
    pub name: String,
    /// What the device is (`speaker`, `fridge`, `tv`, ...): 1 to 40 lowercase letters, digits, `_`, `-`.
    #[schema(min_length = 1, max_length = 40, pattern = r"^[a-z0-9_-]+$")]
    pub kind: String,
    /// The data categories the device handles (catalogue keys); it may act on these and those under them.
    /// 422 `unknown_category` for one the catalogue lacks.
    #[schema(value_type = Vec<crate::schema::CatalogKey>, min_items = 1, max_items = 50)]
    pub categories: Vec<String>,
    /// The purposes the device serves (catalogue keys); it may act for these and those under them.
    /// 422 `unknown_purpose` for one the catalogue lacks.
    #[schema(value_type = Vec<crate::schema::CatalogKey>, min_items = 1, max_items = 50)]
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

/// Checks a pairing request (with a subject or a household) against the catalogue; returns the declared
/// keys sorted, without repeats.
pub(crate) fn validate_pairing(state: &Services, body: &PairDevice) -> Result<(Vec<String>, Vec<String>)> {
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

/// What a service key must hold to pair a device: `devices:write`, and the scopes the device's token will
/// exercise. Every device declares at least one data category and one purpose, and with those its token
/// runs consent checks (`check`) and writes records (`records:write`); a key may not hand out more than it
/// could do itself. `admin` holds them all.
pub const PAIRING_SCOPES: [Scope; 3] = [Scope::DevicesWrite, Scope::Check, Scope::RecordsWrite];

/// Who may pair a device with `subject`: a service key holding every one of [`PAIRING_SCOPES`] (403 naming
/// the first missing), or the person's own subject token (a device acts only for its subject, which is
/// theirs); never a device.
pub fn authorise_pairing(principal: &Principal, subject: &SubjectId) -> Result<()> {
    match principal {
        Principal::Service(caller) => PAIRING_SCOPES.into_iter().try_for_each(|scope| caller.require(scope)),
        Principal::Subject(_) | Principal::Device(_) | Principal::Household(_) => {
            principal.require_subject(subject, Scope::DevicesWrite)
        }
    }
}

/// Pairs a device with `subject` for `by` (the actor); the pairing is in the subject's access log for
/// `reader`. The answer holds the device's token, shown only here.
pub async fn pair(
    state: &Services,
    subject: &SubjectId,
    body: PairDevice,
    by: &str,
    reader: Reader<'_>,
) -> Result<PairedDevice> {
    let (categories, purposes) = validate_pairing(state, &body)?;
    let (token, token_hash) = make_device_token(state.keys.pepper())?;
    let id = format!("dev_{}", hex::encode(consentry_store::random_bytes::<8>()?));
    let record = DeviceRecord {
        id,
        subject: subject.clone(),
        name: body.name.trim().to_owned(),
        kind: body.kind,
        categories,
        purposes,
        created_at: Timestamp::now(),
        last_seen: None,
    };
    state.store.create_device(NewDevice { record: record.clone(), token_hash }).await?;
    tracing::info!(device = %record.id, by = %by, "device paired");
    reader.log(&state.access, subject);
    // The MQTT publisher sends the new device its first snapshot.
    state.devices.subject_changed(subject);
    Ok(PairedDevice { device: DeviceOut::from(record), token })
}

/// The subject's paired devices, oldest first; the read is logged for `reader`.
pub async fn list(state: &Services, subject: &SubjectId, reader: Reader<'_>) -> Result<DeviceList> {
    reader.log(&state.access, subject);
    let devices = state.store.subject_devices(subject).await?;
    Ok(DeviceList { devices: devices.into_iter().map(DeviceOut::from).collect() })
}

/// Unpairs `subject`'s device `id` (its token stops working at once); `false` when they have no such
/// device. The preference centre unpairs through here, the API through [`unpair`].
pub async fn unpair_device(state: &Services, subject: &SubjectId, id: &str, by: &str) -> Result<bool> {
    if !state.store.delete_device(subject, id).await? {
        return Ok(false);
    }
    tracing::info!(device = %id, by = %by, "device unpaired");
    state.devices.unpaired(id);
    Ok(true)
}

/// Unpairs `subject`'s device `id`, in the subject's access log for `reader`; not found when they have no
/// such device.
pub async fn unpair(
    state: &Services,
    subject: &SubjectId,
    id: &str,
    by: &str,
    reader: Reader<'_>,
) -> Result<()> {
    if !unpair_device(state, subject, id, by).await? {
        return Err(Error::NotFound("device"));
    }
    reader.log(&state.access, subject);
    Ok(())
}

/// What a device asking for its snapshot gets.
#[derive(Debug)]
pub enum SnapshotReply {
    /// The snapshot it holds (named by this entity tag) is still good: nothing to send.
    Held { etag: String },
    /// A fresh snapshot to send.
    Fresh(SignedSnapshot),
}

/// The device's current snapshot, unless one it holds (`held`: the entity tags of an `If-None-Match`) says
/// the same and is less than half its lifetime old.
pub async fn consent_snapshot(
    state: &Services,
    device: &SnapshotDevice,
    held: Option<&str>,
) -> Result<SnapshotReply> {
    let (signed, _) = any_snapshot(state, device).await?;
    let max_age = state.config.device_snapshot_max_age_secs;
    let still_good = held.and_then(|held| still_fresh(held, &signed.tag, max_age, Timestamp::now()));
    Ok(match still_good {
        Some(etag) => SnapshotReply::Held { etag },
        None => SnapshotReply::Fresh(signed),
    })
}

/// A device's stream of fresh snapshots: the next one after every change that affects the device (and
/// at least before the last one sent expires); it ends when the device is unpaired or the node stops.
/// A device holds at most `max_streams_per_device` of them open on one node; dropping one frees its slot.
pub struct SnapshotStream {
    state: Services,
    device: SnapshotDevice,
    /// The subjects whose changes the last snapshot reflects (a household's members).
    subjects: Vec<SubjectId>,
    _slot: StreamSlot,
    changes: tokio::sync::broadcast::Receiver<DeviceChange>,
    /// The content tag last sent; `None` before the first.
    sent: Option<String>,
    sent_at: tokio::time::Instant,
}

impl SnapshotStream {
    /// Subscribes before the first snapshot is built, so no change between the two is missed.
    /// [`Error::TooManyStreams`] when the device already holds as many open streams as it may.
    pub fn open(state: Services, device: SnapshotDevice) -> Result<Self> {
        let max = state.config.max_streams_per_device;
        let slot = state.devices.open_stream(device.device_id(), max).ok_or(Error::TooManyStreams(max))?;
        let changes = state.devices.subscribe();
        let subjects = match &device {
            SnapshotDevice::Subject(d) => vec![d.subject.clone()],
            SnapshotDevice::Household(_) => Vec::new(),
        };
        Ok(Self {
            state,
            device,
            subjects,
            _slot: slot,
            changes,
            sent: None,
            sent_at: tokio::time::Instant::now(),
        })
    }

    /// Whether `change` may change this device's snapshot (`None`: it ends the stream).
    fn concerns(&self, change: &DeviceChange) -> Option<bool> {
        Some(match change {
            DeviceChange::Subject(s) => self.subjects.contains(s),
            DeviceChange::Household(h) => {
                matches!(&self.device, SnapshotDevice::Household(d) if &d.household == h)
            }
            DeviceChange::Unpaired(id) if id == self.device.device_id() => return None,
            DeviceChange::Unpaired(_) => false,
            DeviceChange::Everyone => true,
            DeviceChange::ShuttingDown => return None,
        })
    }

    /// The device as stored now (`None`: unpaired).
    async fn reread(&self) -> consentry_store::Result<Option<SnapshotDevice>> {
        Ok(match &self.device {
            SnapshotDevice::Subject(d) => self
                .state
                .store
                .device(&d.device_id)
                .await?
                .map(|r| SnapshotDevice::Subject(DeviceCaller::from_record(r))),
            SnapshotDevice::Household(d) => self
                .state
                .store
                .household_device(&d.device_id)
                .await?
                .map(|r| SnapshotDevice::Household(HouseholdDeviceCaller::from_record(r))),
        })
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
                        Ok(change) => match self.concerns(&change) {
                            None => return None,
                            Some(true) => {}
                            Some(false) => continue,
                        },
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return None,
                    },
                    () = tokio::time::sleep(wait) => {
                        // A household's members may change on another node, which no notice here tells:
                        // its device's snapshot is rebuilt at each quiet moment and sent if it changed.
                        let household = matches!(self.device, SnapshotDevice::Household(_));
                        if self.sent_at.elapsed() < renew && !household {
                            // A quiet moment: make sure the device is still paired (another node may
                            // have unpaired it).
                            match self.reread().await {
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
            let device = match self.reread().await {
                Ok(Some(device)) => device,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, "reading a streaming device failed");
                    tokio::time::sleep(REVALIDATE).await;
                    continue;
                }
            };
            let signed = match any_snapshot(&self.state, &device).await {
                Ok((signed, subjects)) => {
                    self.subjects = subjects;
                    signed
                }
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
