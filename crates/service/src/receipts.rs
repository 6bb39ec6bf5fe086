//! Consent receipts: what a person keeps after a consent change, shaped after ISO/IEC TS 27560 and the
//! Kantara Consent Receipt 1.1, signed as a compact JWS (EdDSA) that verifies with `/.well-known/jwks.json`.
//!
//! A receipt names the person, so it is never stored: the store keeps its id, the range of ledger events it
//! seals, the catalogue version it was made from and when it was issued ([`StoredReceipt`]), and
//! [`Rebuilder`] builds and signs it again from the ledger whenever it is read, with the key that signed it
//! (recorded by `kid`; the current key for a receipt kept before keys were recorded, or whose key this
//! node did not load). Ed25519 signatures are deterministic, so a receipt read again is the one issued,
//! byte for byte, while the controller's details are unchanged. Once the person is erased nothing links
//! the rows to them, and the receipt can no longer be built.

use std::collections::HashMap;

use consentry_core::catalog::{Catalog, CollectionPointKind, RecipientKind};
use consentry_core::proof::{
    CONSENT_TYPE_EXPLICIT, CollectionPoint, ConsentReceipt, LedgerRange, PiiController,
    RECEIPT_SCHEMA_VERSION, ReceiptCategory, ReceiptEvent, ReceiptNotice, ReceiptPurpose, ReceiptRecipient,
    state_for, unix_seconds,
};
use consentry_core::{Event, SubjectId, Timestamp};
use consentry_store::{NoticeVersion, StoredReceipt};
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::Reader;
use crate::config::Controller;
use crate::error::{Error, Result};
use crate::state::Services;

/// A new receipt id: `rcpt_` and 16 random bytes in hex.
pub(crate) fn new_receipt_id() -> consentry_store::Result<String> {
    let bytes = consentry_store::random_bytes::<16>()?;
    Ok(format!("rcpt_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

fn collection_method(kind: CollectionPointKind) -> &'static str {
    match kind {
        CollectionPointKind::WebForm => "web_form",
        CollectionPointKind::AppScreen => "app_screen",
        CollectionPointKind::DeviceSetup => "device_setup",
        CollectionPointKind::VoicePrompt => "voice_prompt",
        CollectionPointKind::PreferenceCentre => "preference_centre",
        CollectionPointKind::InStore => "in_store",
        CollectionPointKind::Api => "api",
    }
}

fn recipient_kind(kind: RecipientKind) -> &'static str {
    match kind {
        RecipientKind::Controller => "controller",
        RecipientKind::Processor => "processor",
        RecipientKind::ThirdParty => "third_party",
    }
}

/// What a receipt needs besides the placed events.
#[derive(Debug, Clone)]
pub(crate) struct ReceiptContext {
    pub id: String,
    pub subject: SubjectId,
    pub controller: Controller,
    pub notice: Option<NoticeVersion>,
    pub collection_point: Option<String>,
}

/// Builds the receipt for one request's placed events.
pub(crate) fn build(
    ctx: &ReceiptContext,
    catalog: &Catalog,
    events: &[Event],
    now: Timestamp,
) -> ConsentReceipt {
    let cp = ctx.collection_point.as_deref().and_then(|k| catalog.collection_point(k));
    let mut spi = Vec::new();
    let purposes = events
        .iter()
        .map(|e| {
            let p = catalog.purpose(&e.purpose);
            // An empty scope list means what the purpose's notice covers.
            let pick = |scoped: &[String], declared: Option<&Vec<String>>| -> Vec<String> {
                if scoped.is_empty() { declared.cloned().unwrap_or_default() } else { scoped.to_vec() }
            };
            let categories: Vec<ReceiptCategory> = pick(&e.scope.categories, p.map(|p| &p.categories))
                .into_iter()
                .map(|key| {
                    let c = catalog.category(&key);
                    let sensitive = c.is_some_and(|c| c.sensitive);
                    if sensitive && !spi.contains(&key) {
                        spi.push(key.clone());
                    }
                    ReceiptCategory { dpv: c.and_then(|c| c.dpv.clone()), sensitive, key }
                })
                .collect();
            let recipients: Vec<ReceiptRecipient> = pick(&e.scope.recipients, p.map(|p| &p.recipients))
                .into_iter()
                .map(|key| {
                    let r = catalog.recipient(&key);
                    ReceiptRecipient {
                        name: r.map_or_else(|| key.clone(), |r| r.name.clone()),
                        kind: r.map_or("unknown", |r| recipient_kind(r.kind)).to_owned(),
                        key,
                    }
                })
                .collect();
            ReceiptPurpose {
                purpose: e.purpose.clone(),
                name: p.map_or_else(|| e.purpose.clone(), |p| p.name.clone()),
                dpv: p.and_then(|p| p.dpv.clone()),
                legal_basis: p.map_or("consent", |p| p.basis.as_str()).to_owned(),
                consent_type: CONSENT_TYPE_EXPLICIT.to_owned(),
                state: state_for(e.action).to_owned(),
                third_party_disclosure: recipients.iter().any(|r| r.kind == "third_party"),
                categories,
                channels: pick(&e.scope.channels, p.map(|p| &p.channels)),
                recipients,
                expires_at: e.expires_at.map(|t| t.to_string()),
                event: ReceiptEvent::from(e),
                recorded_at: e.recorded_at.to_string(),
            }
        })
        .collect();
    let c = &ctx.controller;
    ConsentReceipt {
        schema_version: RECEIPT_SCHEMA_VERSION.to_owned(),
        receipt_id: ctx.id.clone(),
        iat: unix_seconds(now),
        consent_timestamp: events.first().map_or_else(|| now.to_string(), |e| e.recorded_at.to_string()),
        jurisdiction: c.jurisdiction.clone(),
        pii_principal_id: ctx.subject.as_str().to_owned(),
        pii_controllers: vec![PiiController {
            name: c.name.clone(),
            contact: c.contact.clone(),
            address: c.address.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            url: c.url.clone(),
        }],
        collection_method: cp.map_or("api", |cp| collection_method(cp.kind)).to_owned(),
        collection_point: cp.map(|cp| CollectionPoint { key: cp.key.clone(), name: cp.name.clone() }),
        notice: ctx.notice.as_ref().map(|n| ReceiptNotice {
            key: n.key.clone(),
            version: n.version,
            sha256: n.sha256.clone(),
            language: n.language.clone(),
            title: n.title.clone(),
            url: n.url.clone(),
        }),
        sensitive: !spi.is_empty(),
        spi_categories: spi,
        purposes,
        ledger: LedgerRange {
            first_seq: events.first().map_or(0, |e| e.seq),
            last_seq: events.last().map_or(0, |e| e.seq),
            head: events.last().map_or_else(String::new, |e| e.hash.clone()),
        },
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptOut {
    pub id: String,
    pub subject: String,
    /// Compact JWS (EdDSA); verify it with the keys at `/.well-known/jwks.json`.
    pub jws: String,
    pub created_at: String,
}

/// A receipt again, built from the ledger as it was issued; the read is logged. A receipt whose subject
/// was erased names nobody any more: it is not found.
pub async fn get(services: &Services, id: &str, reader: Reader<'_>) -> Result<ReceiptOut> {
    let found = services.store.receipt(id).await?.ok_or(Error::NotFound("receipt"))?;
    let subject = found.subject.clone().ok_or(Error::NotFound("receipt"))?;
    let out = Rebuilder::new(services).rebuild(found).await?;
    reader.log(&services.access, &subject);
    Ok(out)
}

/// Builds stored receipts again from the ledger, each catalogue version it needs read and checked once.
pub(crate) struct Rebuilder<'s> {
    services: &'s Services,
    catalogs: HashMap<u64, Catalog>,
}

/// The most events one receipt seals (one request's changes, see `consents::MAX_CHANGES`), with room.
const MAX_SEALED: u64 = 10_000;

impl<'s> Rebuilder<'s> {
    pub fn new(services: &'s Services) -> Self {
        Self { services, catalogs: HashMap::new() }
    }

    /// The receipt `stored` stands for, signed with the key that signed it; not found once its subject
    /// was erased.
    pub async fn rebuild(&mut self, stored: StoredReceipt) -> Result<ReceiptOut> {
        let subject = stored.subject.ok_or(Error::NotFound("receipt"))?;
        let span = stored.last_seq.checked_sub(stored.first_seq).filter(|n| *n < MAX_SEALED);
        let span =
            span.ok_or_else(|| Error::internal("a stored receipt's event range is not one request's"))?;
        let store = &self.services.store;
        let mut events = store.history(&subject, stored.first_seq.saturating_sub(1), span as u32 + 1).await?;
        events.retain(|e| e.seq <= stored.last_seq);
        let first = events.first().ok_or_else(|| Error::internal("a stored receipt's events are missing"))?;
        let notice = match (&first.notice, first.notice_version) {
            (Some(key), Some(version)) => store.notice_version(key, version).await?,
            _ => None,
        };
        let ctx = ReceiptContext {
            id: stored.id,
            subject,
            controller: self.services.config.controller.clone(),
            notice,
            collection_point: first.collection_point.clone(),
        };
        let catalog = self.catalog(stored.catalog_version).await?;
        let receipt = build(&ctx, catalog, &events, stored.created_at);
        let signing = &self.services.signing;
        let signer = stored.kid.and_then(|kid| signing.key(&kid)).unwrap_or_else(|| signing.current());
        Ok(ReceiptOut {
            jws: signer.sign_jws(&receipt),
            id: ctx.id,
            subject: ctx.subject.into_string(),
            created_at: stored.created_at.to_string(),
        })
    }

    /// Catalogue version `version`, as applied.
    async fn catalog(&mut self, version: u64) -> Result<&Catalog> {
        if !self.catalogs.contains_key(&version) {
            let view = self.services.catalog();
            let catalog = if view.stored.version == version {
                view.catalog.clone()
            } else {
                let document = self.services.store.catalog_document(version).await?;
                let document =
                    document.ok_or_else(|| Error::internal("a receipt's catalogue version is missing"))?;
                Catalog::validate(document)
                    .map_err(|_| Error::internal("a receipt's catalogue version no longer validates"))?
            };
            self.catalogs.insert(version, catalog);
        }
        Ok(&self.catalogs[&version])
    }
}
