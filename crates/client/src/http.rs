//! The HTTP client: typed calls for services (record consent, check, read history).

mod guardians;

pub use self::guardians::{Age, AgeIn, Guardian};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What can go wrong talking to Consentry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Consentry answered with an RFC 9457 problem.
    #[error("{status} {code}: {detail}")]
    Problem { status: u16, code: String, detail: String },
    /// The request did not get an answer (network, TLS, decoding).
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("invalid base URL: {0}")]
    BaseUrl(String),
}

/// A decision.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    /// As the engine names it (`granted`, `no_consent`, `withdrawn`, ...; for a known child
    /// `guardian_required` or `child_protected`).
    pub reason: String,
    pub event_id: Option<String>,
    /// When `reason` is `not_covered`: which part of the question was not covered (`category`,
    /// `channel` or `recipient`).
    #[serde(default)]
    pub not_covered: Option<String>,
}

/// One question: may this subject's data be used for this purpose (and category, channel, recipient)?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRequest {
    pub subject: String,
    pub purpose: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// A place of the catalogue's `jurisdictions` (`US-CA`) whose rules decide; `None`: the subject's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
}

impl CheckRequest {
    pub fn new(subject: impl Into<String>, purpose: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            purpose: purpose.into(),
            category: None,
            channel: None,
            recipient: None,
            jurisdiction: None,
        }
    }
    pub fn category(mut self, c: impl Into<String>) -> Self {
        self.category = Some(c.into());
        self
    }
    pub fn channel(mut self, c: impl Into<String>) -> Self {
        self.channel = Some(c.into());
        self
    }
    pub fn recipient(mut self, r: impl Into<String>) -> Self {
        self.recipient = Some(r.into());
        self
    }
    /// Decide by the rules of `place` (ISO 3166-1 alpha-2 or ISO 3166-2, a key of the catalogue's
    /// `jurisdictions`): under opt-out, `not_opted_out` until the person opts out.
    pub fn jurisdiction(mut self, place: impl Into<String>) -> Self {
        self.jurisdiction = Some(place.into());
        self
    }
}

/// One consent change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub purpose: String,
    /// `grant`, `deny`, `withdraw`, `object`, `restrict` or `renew`.
    pub action: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl Change {
    pub fn new(purpose: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            purpose: purpose.into(),
            action: action.into(),
            categories: Vec::new(),
            channels: Vec::new(),
            recipients: Vec::new(),
            expires_at: None,
        }
    }
    pub fn grant(purpose: impl Into<String>) -> Self {
        Self::new(purpose, "grant")
    }
    pub fn withdraw(purpose: impl Into<String>) -> Self {
        Self::new(purpose, "withdraw")
    }
    pub fn channels<I: IntoIterator<Item = S>, S: Into<String>>(mut self, list: I) -> Self {
        self.channels = list.into_iter().map(Into::into).collect();
        self
    }
    pub fn categories<I: IntoIterator<Item = S>, S: Into<String>>(mut self, list: I) -> Self {
        self.categories = list.into_iter().map(Into::into).collect();
        self
    }
    pub fn recipients<I: IntoIterator<Item = S>, S: Into<String>>(mut self, list: I) -> Self {
        self.recipients = list.into_iter().map(Into::into).collect();
        self
    }
    pub fn expires_at(mut self, rfc3339: impl Into<String>) -> Self {
        self.expires_at = Some(rfc3339.into());
        self
    }
}

/// A set of changes recorded under one notice version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordConsents {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection_point: Option<String>,
    pub changes: Vec<Change>,
    /// The subject's jurisdiction from this write on (recorded in the ledger).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// `guardian:<id>`: the changes are a recorded guardian's (a known child's consent needs one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl RecordConsents {
    pub fn under_notice(notice: impl Into<String>) -> Self {
        Self { notice: Some(notice.into()), ..Self::default() }
    }
    pub fn collection_point(mut self, key: impl Into<String>) -> Self {
        self.collection_point = Some(key.into());
        self
    }
    pub fn change(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }
    /// Sets the subject's jurisdiction with this write.
    pub fn jurisdiction(mut self, place: impl Into<String>) -> Self {
        self.jurisdiction = Some(place.into());
        self
    }
    /// Records the changes as made by `guardian`, a recorded guardian of the subject.
    pub fn by_guardian(mut self, guardian: &str) -> Self {
        self.actor = Some(format!("guardian:{guardian}"));
        self
    }
}

/// A ledger event as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LedgerEvent {
    pub id: String,
    pub seq: u64,
    pub subject: String,
    pub purpose: String,
    pub action: String,
    pub categories: Vec<String>,
    pub channels: Vec<String>,
    pub recipients: Vec<String>,
    pub notice: Option<String>,
    pub notice_version: Option<u32>,
    pub notice_hash: Option<String>,
    pub collection_point: Option<String>,
    pub actor: String,
    pub recorded_at: String,
    pub expires_at: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    /// `sha256:<hex>` of the TCF or GPP string a signal's change was read from.
    #[serde(default)]
    pub evidence: Option<String>,
    /// The subject's jurisdiction from this event on, when the change set it.
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// When the change was originally made, on an imported change or a choice a link carried over.
    #[serde(default)]
    pub occurred_at: Option<String>,
}

#[derive(Deserialize)]
struct SubjectJurisdiction {
    jurisdiction: Option<String>,
    #[serde(default)]
    event: Option<LedgerEvent>,
}

#[derive(Deserialize)]
struct Events {
    events: Vec<LedgerEvent>,
}

#[derive(Serialize)]
struct Batch<'a> {
    checks: &'a [CheckRequest],
}

#[derive(Deserialize)]
struct BatchResults {
    results: Vec<Decision>,
}

#[derive(Deserialize)]
struct ProblemBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    detail: String,
}

/// One of a subject's identifiers (an e-mail address, a phone number, ...), normalised; `masked` when the
/// key may not see values (it lacks `identifiers:read`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Identifier {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub masked: bool,
    pub created_at: String,
}

#[derive(Deserialize)]
struct Identifiers {
    identifiers: Vec<Identifier>,
}

/// The result of linking a subject into another: the survivor, the id now an alias of it, the choices
/// carried over (their original time as `occurred_at`) and what moved.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Linked {
    pub subject: String,
    pub from: String,
    pub events: Vec<LedgerEvent>,
    pub moved: Moved,
}

/// What a link moved to the survivor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Moved {
    pub identifiers: u64,
    pub records: u64,
    pub devices: u64,
    pub requests: u64,
}

#[derive(Deserialize)]
struct SubjectMatch {
    subject: String,
}

#[derive(Deserialize)]
struct SubjectMatches {
    subjects: Vec<SubjectMatch>,
}

/// A household: people who share devices.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Household {
    pub id: String,
    pub name: String,
    pub members: Vec<HouseholdMember>,
    pub devices: Vec<Device>,
    pub created_at: String,
}

/// A member of a household, and the handle its devices know them by (for `DeviceConsent::check_for`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HouseholdMember {
    pub subject: String,
    pub handle: String,
    pub added_at: String,
}

/// A paired device.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub created_at: String,
}

/// A device just paired, with its token (shown only once).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PairedDevice {
    #[serde(flatten)]
    pub device: Device,
    pub token: String,
}

/// A client bound to one Consentry base URL and one API key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::BaseUrl("must start with http:// or https://".into()));
        }
        Ok(Self { http: reqwest::Client::new(), base, key: api_key.to_owned() })
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, Error> {
        let response = request.bearer_auth(&self.key).send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.json().await?);
        }
        let body: ProblemBody =
            response.json().await.unwrap_or(ProblemBody { code: "unknown".into(), detail: String::new() });
        Err(Error::Problem { status: status.as_u16(), code: body.code, detail: body.detail })
    }

    /// For answers without a body (204).
    async fn send_empty(&self, request: reqwest::RequestBuilder) -> Result<(), Error> {
        let response = request.bearer_auth(&self.key).send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: ProblemBody =
            response.json().await.unwrap_or(ProblemBody { code: "unknown".into(), detail: String::new() });
        Err(Error::Problem { status: status.as_u16(), code: body.code, detail: body.detail })
    }

    /// Attaches an identifier (`kind`: `email`, `phone`, `account`, `device_serial`, `advertising_id`, or a
    /// type the catalogue declares) to `subject` (`identifiers:write`); returns it normalised. Another subject holding it is a problem
    /// with status 409.
    pub async fn add_identifier(&self, subject: &str, kind: &str, value: &str) -> Result<Identifier, Error> {
        let url = format!("{}/v1/subjects/{}/identifiers", self.base, subject);
        let body = serde_json::json!({"type": kind, "value": value});
        self.send(self.http.post(url).json(&body)).await
    }

    /// The subject's identifiers, oldest first (values masked unless the key holds `identifiers:read`).
    pub async fn identifiers(&self, subject: &str) -> Result<Vec<Identifier>, Error> {
        let url = format!("{}/v1/subjects/{}/identifiers", self.base, subject);
        let r: Identifiers = self.send(self.http.get(url)).await?;
        Ok(r.identifiers)
    }

    /// Removes the subject's identifier `id` (`identifiers:write`).
    pub async fn delete_identifier(&self, subject: &str, id: &str) -> Result<(), Error> {
        let url = format!("{}/v1/subjects/{}/identifiers/{}", self.base, subject, id);
        self.send_empty(self.http.delete(url)).await
    }

    /// The subject holding an identifier, if any (`identifiers:read`).
    pub async fn find_subject(&self, kind: &str, value: &str) -> Result<Option<String>, Error> {
        let url = format!("{}/v1/subjects", self.base);
        let identifier = format!("{kind}:{value}");
        let r: SubjectMatches =
            self.send(self.http.get(url).query(&[("identifier", identifier.as_str())])).await?;
        Ok(r.subjects.into_iter().next().map(|m| m.subject))
    }

    /// Merges subject `from` into `subject` (`consent:write` and `identifiers:write`): choices merge (per
    /// purpose and scope the most recent by its original time, a grant only where it allows nothing that
    /// neither record allowed), identifiers, records, devices and requests move, and `from` becomes an alias
    /// of `subject`. There is no unlinking.
    pub async fn link(&self, subject: &str, from: &str) -> Result<Linked, Error> {
        let url = format!("{}/v1/subjects/{}/links", self.base, subject);
        self.send(self.http.post(url).json(&serde_json::json!({"from": from}))).await
    }

    /// Creates a household (`devices:write`); `name` is an operator's label, stored encrypted.
    pub async fn create_household(&self, name: &str) -> Result<Household, Error> {
        let url = format!("{}/v1/households", self.base);
        self.send(self.http.post(url).json(&serde_json::json!({"name": name}))).await
    }

    /// A household with its members and devices (`consent:read`).
    pub async fn household(&self, id: &str) -> Result<Household, Error> {
        self.send(self.http.get(format!("{}/v1/households/{}", self.base, id))).await
    }

    /// Renames household `id` (`devices:write`). Nothing comes back: reading the household (its members)
    /// is [`Client::household`]'s, with `consent:read`.
    pub async fn rename_household(&self, id: &str, name: &str) -> Result<(), Error> {
        let url = format!("{}/v1/households/{}", self.base, id);
        self.send_empty(self.http.patch(url).json(&serde_json::json!({"name": name}))).await
    }

    /// Deletes household `id` with its memberships and paired devices (`devices:write`): the devices'
    /// tokens stop working. The members' own records stay.
    pub async fn delete_household(&self, id: &str) -> Result<(), Error> {
        self.send_empty(self.http.delete(format!("{}/v1/households/{}", self.base, id))).await
    }

    /// Makes `subject` a member of household `id` (`devices:write`); returns the member with the handle
    /// the household's devices know them by (the same one when they already were a member).
    pub async fn add_household_member(&self, id: &str, subject: &str) -> Result<HouseholdMember, Error> {
        let url = format!("{}/v1/households/{}/members", self.base, id);
        self.send(self.http.post(url).json(&serde_json::json!({"subject": subject}))).await
    }

    /// Takes `subject` out of household `id` (`devices:write`): their consents leave its devices' snapshots.
    pub async fn remove_household_member(&self, id: &str, subject: &str) -> Result<(), Error> {
        let url = format!("{}/v1/households/{}/members/{}", self.base, id, subject);
        self.send_empty(self.http.delete(url)).await
    }

    /// Pairs a device with household `id` (`devices:write`, `check` and `records:write`), declaring the
    /// data categories and purposes it handles; the token is in the answer only.
    pub async fn pair_household_device(
        &self,
        id: &str,
        name: &str,
        kind: &str,
        categories: &[&str],
        purposes: &[&str],
    ) -> Result<PairedDevice, Error> {
        let url = format!("{}/v1/households/{}/devices", self.base, id);
        let body =
            serde_json::json!({"name": name, "kind": kind, "categories": categories, "purposes": purposes});
        self.send(self.http.post(url).json(&body)).await
    }

    /// One decision.
    pub async fn check(&self, request: &CheckRequest) -> Result<Decision, Error> {
        self.send(self.http.post(format!("{}/v1/check", self.base)).json(request)).await
    }

    /// Many decisions, in the order asked.
    pub async fn check_batch(&self, checks: &[CheckRequest]) -> Result<Vec<Decision>, Error> {
        let r: BatchResults = self
            .send(self.http.post(format!("{}/v1/check/batch", self.base)).json(&Batch { checks }))
            .await?;
        Ok(r.results)
    }

    /// Records changes for `subject`; returns the ledger events once they are durable.
    pub async fn record_consents(
        &self,
        subject: &str,
        body: &RecordConsents,
    ) -> Result<Vec<LedgerEvent>, Error> {
        let url = format!("{}/v1/subjects/{}/consents", self.base, subject);
        let r: Events = self.send(self.http.post(url).json(body)).await?;
        Ok(r.events)
    }

    /// The subject's ledger events after `after` (an event id), oldest first.
    pub async fn history(
        &self,
        subject: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, Error> {
        let mut url = format!("{}/v1/subjects/{}/consents/history?limit={limit}", self.base, subject);
        if let Some(after) = after {
            url.push_str("&after=");
            url.push_str(after);
        }
        let r: Events = self.send(self.http.get(url)).await?;
        Ok(r.events)
    }

    /// Sets `subject`'s jurisdiction (`consent:write`): checks that name none decide by `place`'s rules.
    /// Returns the `locate` ledger event, or `None` when the subject was already there.
    pub async fn set_jurisdiction(&self, subject: &str, place: &str) -> Result<Option<LedgerEvent>, Error> {
        let url = format!("{}/v1/subjects/{}/jurisdiction", self.base, subject);
        let body = serde_json::json!({"jurisdiction": place});
        let r: SubjectJurisdiction = self.send(self.http.put(url).json(&body)).await?;
        Ok(r.event)
    }

    /// `subject`'s jurisdiction, if one was set (`consent:read`).
    pub async fn jurisdiction(&self, subject: &str) -> Result<Option<String>, Error> {
        let url = format!("{}/v1/subjects/{}/jurisdiction", self.base, subject);
        let r: SubjectJurisdiction = self.send(self.http.get(url)).await?;
        Ok(r.jurisdiction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_serialise_without_empty_fields() {
        let body = RecordConsents::under_notice("marketing.direct")
            .change(Change::grant("marketing.direct").channels(["email"]));
        assert_eq!(
            serde_json::to_value(&body).expect("json"),
            serde_json::json!({"notice": "marketing.direct",
                "changes": [{"purpose": "marketing.direct", "action": "grant", "channels": ["email"]}]})
        );
        let check = CheckRequest::new("u1", "analytics").category("user.device.telemetry");
        assert_eq!(
            serde_json::to_value(&check).expect("json"),
            serde_json::json!({"subject": "u1", "purpose": "analytics", "category": "user.device.telemetry"})
        );
        let check = CheckRequest::new("u1", "third_party").jurisdiction("US-CA");
        assert_eq!(
            serde_json::to_value(&check).expect("json"),
            serde_json::json!({"subject": "u1", "purpose": "third_party", "jurisdiction": "US-CA"})
        );
        let body = RecordConsents::default().change(Change::withdraw("analytics")).jurisdiction("DE");
        assert_eq!(
            serde_json::to_value(&body).expect("json"),
            serde_json::json!({"changes": [{"purpose": "analytics", "action": "withdraw"}], "jurisdiction": "DE"})
        );
    }

    #[test]
    fn base_url_is_checked() {
        assert!(Client::new("ftp://x", "k").is_err());
        assert!(Client::new("http://127.0.0.1:8080/", "k").is_ok());
    }
}
