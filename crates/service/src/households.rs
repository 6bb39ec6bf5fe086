//! Households and their shared devices: a household (an operator's label, stored encrypted), its members
//! (subjects, each with a handle the household's devices know them by), and devices paired to the
//! household rather than to one person. A household device's snapshot carries every member's statements
//! ([`crate::devices::household_snapshot`]); a change of membership notifies its devices at once.
//!
//! Households are managed with service keys: creating, renaming or deleting one and changing its members
//! take `devices:write`
//! (a household exists to share devices, and a member's consents reach its devices), reading takes
//! `consent:read`, pairing takes what pairing with a subject takes ([`crate::devices::PAIRING_SCOPES`]).

use consentry_core::{SubjectId, Timestamp};
use consentry_store::households::{new_household_id, new_member_handle};
use consentry_store::{AddedMember, DeletedHousehold, HouseholdDevice, HouseholdRecord, NewHouseholdDevice};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Reader;
use crate::auth::make_device_token;
use crate::devices::{DeviceOut, PairDevice, PairedDevice, validate_pairing};
use crate::error::{Error, Result};
use crate::state::Services;

/// Longest household label, in characters.
const MAX_NAME: usize = 100;
/// Most households listed on one page, and the default.
const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHousehold {
    /// An operator's label, 1 to 100 characters, none of them control characters. Stored encrypted: it
    /// may name a family.
    #[schema(min_length = 1, max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")]
    pub name: String,
}

/// What a `PATCH` changes; a field left out stays as it is. A household's only setting is its name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateHousehold {
    /// The new label, as at creation (1 to 100 characters, none of them control characters).
    #[schema(min_length = 1, max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The brand's id of the person joining.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._:@+=~-]+$")]
    pub subject: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub subject: String,
    /// What the household's devices know the member by (`hm_...`): a device that recognises the person
    /// decides for them with this handle (`DeviceConsent::check_for`). It names no one.
    pub handle: String,
    pub added_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdOut {
    pub id: String,
    pub name: String,
    /// Oldest first.
    pub members: Vec<MemberOut>,
    /// The household's paired devices, oldest first.
    pub devices: Vec<DeviceOut>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdList {
    pub households: Vec<HouseholdOut>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl From<HouseholdDevice> for DeviceOut {
    fn from(d: HouseholdDevice) -> Self {
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

fn render(h: HouseholdRecord, devices: Vec<HouseholdDevice>) -> HouseholdOut {
    HouseholdOut {
        id: h.id,
        name: h.name,
        members: h
            .members
            .into_iter()
            .map(|m| MemberOut {
                subject: m.subject.as_str().to_owned(),
                handle: m.handle,
                added_at: m.added_at.to_string(),
            })
            .collect(),
        devices: devices.into_iter().map(DeviceOut::from).collect(),
        created_at: h.created_at.to_string(),
    }
}

fn label(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::validation(
            "name",
            format!("must be 1 to {MAX_NAME} characters, none of them control characters"),
        ));
    }
    Ok(name.to_owned())
}

/// Creates a household with no members and no devices.
pub async fn create(state: &Services, body: CreateHousehold, by: &str) -> Result<HouseholdOut> {
    let name = label(&body.name)?;
    let id = new_household_id()?;
    let now = Timestamp::now();
    state.store.create_household(&state.kek, &id, &name, now).await?;
    tracing::info!(household = %id, by = %by, "household created");
    let record = HouseholdRecord { id, name, created_at: now, members: Vec::new() };
    Ok(render(record, Vec::new()))
}

async fn record(state: &Services, id: &str) -> Result<HouseholdRecord> {
    state.store.household(&state.kek, id).await?.ok_or(Error::NotFound("household"))
}

/// One household with its members and devices; reading it is in each member's access log for `reader`.
pub async fn get(state: &Services, id: &str, reader: Reader<'_>) -> Result<HouseholdOut> {
    let h = record(state, id).await?;
    for m in &h.members {
        reader.log(&state.access, &m.subject);
    }
    let devices = state.store.household_devices(id).await?;
    Ok(render(h, devices))
}

/// Changes household `id` as `body` says (its name) and answers it as [`get`] does; reading the answer is
/// in each member's access log for `reader`.
pub async fn update(state: &Services, id: &str, body: UpdateHousehold, by: &str) -> Result<()> {
    match body.name {
        Some(name) => {
            let name = label(&name)?;
            if !state.store.rename_household(&state.kek, id, &name).await? {
                return Err(Error::NotFound("household"));
            }
            tracing::info!(household = %id, by = %by, "household renamed");
        }
        None => {
            record(state, id).await?;
        }
    }
    Ok(())
}

/// Deletes household `id` with its memberships and paired devices: the devices' tokens stop working and
/// their open streams end at once. Each member's access log records that `reader` ended their membership.
///
/// The members logged and the devices ended are the ones the store's delete removed, read in its
/// transaction: a member joining at the same moment is either among them or refused (404).
pub async fn delete(state: &Services, id: &str, by: &str, reader: Reader<'_>) -> Result<()> {
    let Some(deleted) = state.store.delete_household(id).await? else {
        return Err(Error::NotFound("household"));
    };
    let DeletedHousehold { members, devices } = deleted;
    for subject in &members {
        reader.log(&state.access, subject);
    }
    for device in &devices {
        state.devices.unpaired(device);
    }
    tracing::info!(household = %id, devices = devices.len(), by = %by, "household deleted");
    Ok(())
}

/// Households by id, after `after`, at most `limit` (1 to 500, default 100); each read is in its members'
/// access logs for `reader`.
pub async fn list(
    state: &Services,
    after: Option<&str>,
    limit: Option<u32>,
    reader: Reader<'_>,
) -> Result<HouseholdList> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::InvalidQuery(format!("limit must be 1 to {MAX_PAGE}")));
    }
    let page = state.store.households_page(&state.kek, after, limit).await?;
    let next = (page.len() == limit as usize).then(|| page.last().map(|h| h.id.clone())).flatten();
    let mut households = Vec::with_capacity(page.len());
    for h in page {
        for m in &h.members {
            reader.log(&state.access, &m.subject);
        }
        let devices = state.store.household_devices(&h.id).await?;
        households.push(render(h, devices));
    }
    Ok(HouseholdList { households, next })
}

/// Makes `body.subject` a member; `true` when they joined now (`false`: they already were, and their
/// handle stands). The household's devices get a snapshot with the member's consents at once.
pub async fn add_member(
    state: &Services,
    id: &str,
    body: AddMember,
    by: &str,
    reader: Reader<'_>,
) -> Result<(MemberOut, bool)> {
    let subject =
        SubjectId::new(body.subject).map_err(|e| Error::InvalidSubject(format!("the subject id {e}")))?;
    // A linked id is its survivor's: the membership is the survivor's (whose statements the devices get).
    let subject = state.aliases.survivor(subject);
    // An erased person gets no pseudonym again.
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let handle = new_member_handle()?;
    let now = Timestamp::now();
    let (handle, added_at, joined) = match state.store.add_member(id, &subject, &handle, now).await? {
        AddedMember::NoHousehold => return Err(Error::NotFound("household")),
        AddedMember::Added => (handle, now, true),
        AddedMember::Existing(held) => {
            let h = record(state, id).await?;
            let at = h.members.iter().find(|m| m.handle == held).map_or(now, |m| m.added_at);
            (held, at, false)
        }
    };
    reader.log(&state.access, &subject);
    if joined {
        tracing::info!(household = %id, by = %by, "household member added");
        state.devices.household_changed(id);
    }
    let member = MemberOut { subject: subject.as_str().to_owned(), handle, added_at: added_at.to_string() };
    Ok((member, joined))
}

/// Takes `subject` out of the household: their consents leave its devices' snapshots at once (a new
/// snapshot is pushed over SSE and MQTT). Not found when they were not a member.
pub async fn remove_member(
    state: &Services,
    id: &str,
    subject: &SubjectId,
    by: &str,
    reader: Reader<'_>,
) -> Result<()> {
    let subject = &state.aliases.survivor(subject.clone());
    if !state.store.remove_member(id, subject).await? {
        return Err(Error::NotFound("member"));
    }
    reader.log(&state.access, subject);
    tracing::info!(household = %id, by = %by, "household member removed");
    state.devices.household_changed(id);
    Ok(())
}

/// Pairs a device with household `id`: the same declaration and answer as pairing with a subject. The
/// token is in the answer only.
pub async fn pair(state: &Services, id: &str, body: PairDevice, by: &str) -> Result<PairedDevice> {
    let (categories, purposes) = validate_pairing(state, &body)?;
    record(state, id).await?;
    let (token, token_hash) = make_device_token(state.keys.pepper())?;
    let device = HouseholdDevice {
        household: id.to_owned(),
        id: format!("dev_{}", hex::encode(consentry_store::random_bytes::<8>()?)),
        name: body.name.trim().to_owned(),
        kind: body.kind,
        categories,
        purposes,
        created_at: Timestamp::now(),
    };
    let paired = NewHouseholdDevice { device: device.clone(), token_hash };
    if !state.store.create_household_device(paired).await? {
        // Deleted since it was read.
        return Err(Error::NotFound("household"));
    }
    tracing::info!(household = %id, device = %device.id, by = %by, "household device paired");
    state.devices.household_changed(id);
    Ok(PairedDevice { device: DeviceOut::from(device), token })
}

/// Unpairs household `id`'s device `device_id` (its token stops working at once); not found when the
/// household has no such device.
pub async fn unpair(state: &Services, id: &str, device_id: &str, by: &str) -> Result<()> {
    if !state.store.delete_household_device(id, device_id).await? {
        return Err(Error::NotFound("device"));
    }
    tracing::info!(household = %id, device = %device_id, by = %by, "household device unpaired");
    state.devices.unpaired(device_id);
    Ok(())
}
