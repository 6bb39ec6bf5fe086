//! Consent receipts: what a person keeps after a consent change, a Kantara Consent Receipt v1.1 with
//! Consentry's evidence (and the ISO/IEC TS 27560 record fields) in its `consentry` member, signed as a
//! compact JWS (EdDSA) that verifies with `/.well-known/jwks.json`. `docs/receipts.md` maps the members.
//!
//! A receipt names the person, so it is never stored: the store keeps its id, the range of ledger events it
//! seals, the catalogue version it was made from and when it was issued ([`StoredReceipt`]), and
//! [`Rebuilder`] builds and signs it again from the ledger whenever it is read, with the key that signed it
//! (recorded by `kid`; the current key for a receipt kept before keys were recorded, or whose key this
//! node did not load). Ed25519 signatures are deterministic, so a receipt read again is the one issued,
//! byte for byte, while the controller's details are unchanged; a receipt issued in an older form is read
//! in the current one. Once the person is erased nothing links
//! the rows to them, and the receipt can no longer be built.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use consentry_core::catalog::{Basis, Catalog, CollectionPointKind, RecipientKind};
use consentry_core::merkle;
use consentry_core::proof::{
    CONSENT_TYPE_EXPLICIT, CONSENT_TYPE_NONE, CollectionPoint, ConsentReceipt, Extension, LedgerRange,
    PiiController, PostalAddress, RECEIPT_SCHEMA_VERSION, RECEIPT_VERSION, ReceiptCategory, ReceiptEvent,
    ReceiptNotice, ReceiptRecipient, Service, ServicePurpose, SigningKey, state_for, unix_seconds,
};
use consentry_core::{Event, SubjectId, Timestamp};
use consentry_store::{NoticeVersion, StoredReceipt};
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::Reader;
use crate::config::Controller;
use crate::error::{Error, Result};
use crate::state::Services;
use crate::tlog;

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

/// Builds the receipt for one request's placed events, as `signer` will sign it.
pub(crate) fn build(
    ctx: &ReceiptContext,
    catalog: &Catalog,
    events: &[Event],
    now: Timestamp,
    signer: &SigningKey,
) -> ConsentReceipt {
    let c = &ctx.controller;
    // The catalogue's words in the language of the notice shown, else in the catalogue's own.
    let lang = ctx.notice.as_ref().map_or_else(|| catalog.document().language(), |n| n.language.as_str());
    let cp = ctx.collection_point.as_deref().and_then(|k| catalog.collection_point(k));
    let mut spi = Vec::new();
    let (purposes, evidence): (Vec<ServicePurpose>, Vec<ReceiptEvent>) = events
        .iter()
        .map(|e| {
            let p = catalog.purpose(&e.purpose);
            // An empty scope list means what the purpose's notice covers.
            let pick = |scoped: &[String], declared: Option<&Vec<String>>| -> Vec<String> {
                if scoped.is_empty() { declared.cloned().unwrap_or_default() } else { scoped.to_vec() }
            };
            let mut category_names = Vec::new();
            let categories: Vec<ReceiptCategory> = pick(&e.scope.categories, p.map(|p| &p.categories))
                .into_iter()
                .map(|key| {
                    let category = catalog.category(&key);
                    let name = category.map_or_else(|| key.clone(), |c| c.name_in(lang).to_owned());
                    let sensitive = category.is_some_and(|c| c.sensitive);
                    if sensitive && !spi.contains(&name) {
                        spi.push(name.clone());
                    }
                    category_names.push(name);
                    ReceiptCategory { dpv: category.and_then(|c| c.dpv.clone()), sensitive, key }
                })
                .collect();
            let recipients: Vec<ReceiptRecipient> = pick(&e.scope.recipients, p.map(|p| &p.recipients))
                .into_iter()
                .map(|key| {
                    let r = catalog.recipient(&key);
                    ReceiptRecipient {
                        name: r.map_or_else(|| key.clone(), |r| r.name_in(lang).to_owned()),
                        kind: r.map_or("unknown", |r| recipient_kind(r.kind)).to_owned(),
                        key,
                    }
                })
                .collect();
            let third_parties: Vec<&str> =
                recipients.iter().filter(|r| r.kind == "third_party").map(|r| r.name.as_str()).collect();
            let basis = p.map_or(Basis::Consent, |p| p.basis);
            let dpv = p.and_then(|p| p.dpv.clone());
            let purpose = ServicePurpose {
                purpose: p.map_or_else(|| e.purpose.clone(), |p| p.name_in(lang).to_owned()),
                purpose_category: vec![dpv.clone().unwrap_or_else(|| e.purpose.clone())],
                consent_type: if basis == Basis::Consent { CONSENT_TYPE_EXPLICIT } else { CONSENT_TYPE_NONE }
                    .to_owned(),
                pii_category: category_names,
                primary_purpose: basis == Basis::Contract,
                termination: c.policy_url.clone(),
                third_party_disclosure: !third_parties.is_empty(),
                third_party_name: (!third_parties.is_empty()).then(|| third_parties.join(", ")),
            };
            let event = ReceiptEvent {
                event_id: e.id(),
                event_time: e.recorded_at.to_string(),
                event_type: e.action.as_str().to_owned(),
                event_state: state_for(e.action).to_owned(),
                purpose_id: e.purpose.clone(),
                dpv,
                lawful_basis: basis.as_str().to_owned(),
                pii_information: categories,
                channels: pick(&e.scope.channels, p.map(|p| &p.channels)),
                recipients,
                expires_at: e.expires_at.map(|t| t.to_string()),
                seq: e.seq,
                hash: e.hash.clone(),
                prev_hash: e.prev_hash.clone(),
                evidence: e.evidence.clone(),
            };
            (purpose, event)
        })
        .unzip();
    let consent_time = events.first().map_or(now, |e| e.recorded_at);
    let a = &c.address;
    ConsentReceipt {
        version: RECEIPT_VERSION.to_owned(),
        jurisdiction: c.jurisdiction.clone(),
        consent_timestamp: unix_seconds(consent_time),
        collection_method: cp.map_or("api", |cp| collection_method(cp.kind)).to_owned(),
        consent_receipt_id: ctx.id.clone(),
        public_key: Some(URL_SAFE_NO_PAD.encode(signer.public_key())),
        language: ctx.notice.as_ref().map(|n| n.language.clone()),
        pii_principal_id: ctx.subject.as_str().to_owned(),
        pii_controllers: vec![PiiController {
            pii_controller: c.name.clone(),
            on_behalf: c.on_behalf,
            contact: c.contact.clone(),
            address: PostalAddress {
                street_address: a.street_address.clone(),
                postal_code: a.postal_code.clone(),
                address_locality: a.locality.clone(),
                address_region: a.region.clone(),
                address_country: a.country.clone(),
            },
            email: c.email.clone(),
            phone: c.phone.clone(),
            pii_controller_url: c.url.clone(),
        }],
        policy_url: c.policy_url.clone(),
        // Consent is given to the controller's services as a whole (every app and device of the brand).
        services: vec![Service { service: c.name.clone(), purposes }],
        sensitive: !spi.is_empty(),
        spi_cat: spi,
        consentry: Extension {
            schema_version: RECEIPT_SCHEMA_VERSION.to_owned(),
            kid: signer.kid().to_owned(),
            issued_at: now.to_string(),
            consent_time: consent_time.to_string(),
            collection_point: cp
                .map(|cp| CollectionPoint { key: cp.key.clone(), name: cp.name_in(lang).to_owned() }),
            notice: ctx.notice.as_ref().map(|n| ReceiptNotice {
                notice_id: n.key.clone(),
                version: n.version,
                sha256: n.sha256.clone(),
                language: n.language.clone(),
                title: n.title.clone(),
                url: n.url.clone(),
            }),
            ledger: LedgerRange {
                first_seq: events.first().map_or(0, |e| e.seq),
                last_seq: events.last().map_or(0, |e| e.seq),
                head: events.last().map_or_else(String::new, |e| e.hash.clone()),
            },
            events: evidence,
        },
    }
}

/// A receipt in its signed form: a compact JWS of the receipt document, signed when asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptOut {
    pub id: String,
    pub subject: String,
    /// Compact JWS (EdDSA); verify it with the keys at `/.well-known/jwks.json`.
    pub jws: String,
    pub created_at: String,
}

/// A ledger event as a leaf of the ledger's Merkle tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeafOut {
    /// The leaf's index: the event's `seq` minus one.
    pub index: u64,
    /// The event's canonical bytes (what its `hash` is the SHA-256 of), base64.
    pub data: String,
}

/// A further leaf of a receipt, with its inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeafProofOut {
    pub index: u64,
    pub data: String,
    pub inclusion_proof: Vec<String>,
}

/// A receipt that proves itself: the receipt document, its events as leaves of the ledger's Merkle tree
/// with their inclusion proofs, the signed checkpoint they lead to, and the opening of the subject's
/// pseudonym. `docs/receipts.md` says how to check it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptProof {
    pub id: String,
    pub subject: String,
    pub created_at: String,
    /// The receipt document: a Kantara Consent Receipt v1.1 with the `consentry` member.
    #[schema(value_type = Object)]
    pub payload: ConsentReceipt,
    /// The first event the receipt records.
    pub leaf: LeafOut,
    /// The RFC 9162 audit path of `leaf` to the root of `checkpoint`, base64 hashes.
    pub inclusion_proof: Vec<String>,
    /// The request's further events, when it made several changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_leaves: Vec<LeafProofOut>,
    /// The C2SP signed checkpoint (a signed note) the proofs lead to: the first covering the events when
    /// the receipt is issued, the newest when it is read again. Verify it with `GET /v1/tlog/vkey`.
    pub checkpoint: String,
    /// Base64 of the key of the subject's pseudonym: HMAC-SHA256 of the subject id under it is the
    /// `subject` of every leaf, which shows the events are this person's.
    pub subject_key: String,
}

/// Longest a write waits for the checkpoint signer before signing a checkpoint itself.
const COVERING_WAIT: Duration = Duration::from_secs(2);

/// The receipt `payload` of `subject`'s `events` with the proofs of their inclusion in the ledger, against
/// the first checkpoint that covers them (signed by the checkpoint worker within about 100 ms of their
/// commit). Not found once the subject's pseudonym key is gone (erased).
pub(crate) async fn prove(
    services: &Services,
    id: String,
    subject: &SubjectId,
    created_at: Timestamp,
    payload: ConsentReceipt,
    events: &[Event],
) -> Result<ReceiptProof> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(Error::internal("a receipt without events"));
    };
    // The key is read while the checkpoint is awaited: neither waits for the other.
    let covering = async {
        match services.tlog.covering(last.seq, COVERING_WAIT).await {
            Some(c) => Ok(c),
            None => {
                let signed = tlog::sign_head(services, None).await?;
                let signed = signed.filter(|c| c.size >= last.seq);
                Ok(Arc::new(signed.ok_or_else(|| Error::internal("no checkpoint covers a committed event"))?))
            }
        }
    };
    let key = async { Ok::<_, Error>(services.store.pseudonym_key(subject).await?) };
    let (checkpoint, key) = tokio::try_join!(covering, key)?;
    let key = key.ok_or(Error::NotFound("receipt"))?;
    let mut proofs =
        tlog::inclusions(services.store.as_ref(), events.iter().map(|e| e.seq - 1), checkpoint.size)
            .await?
            .into_iter();
    let encode = |proof: Vec<merkle::Hash>| proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>();
    let inclusion_proof = encode(proofs.next().unwrap_or_default());
    let other_leaves = events[1..]
        .iter()
        .zip(proofs)
        .map(|(e, proof)| LeafProofOut {
            index: e.seq - 1,
            data: STANDARD.encode(e.canonical_bytes()),
            inclusion_proof: encode(proof),
        })
        .collect();
    Ok(ReceiptProof {
        id,
        subject: subject.as_str().to_owned(),
        created_at: created_at.to_string(),
        payload,
        leaf: LeafOut { index: first.seq - 1, data: STANDARD.encode(first.canonical_bytes()) },
        inclusion_proof,
        other_leaves,
        checkpoint: checkpoint.note.clone(),
        subject_key: STANDARD.encode(key),
    })
}

/// How to read a receipt again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReceiptFormat {
    /// With the proofs of its events' inclusion in the ledger ([`ReceiptProof`]).
    #[default]
    Proof,
    /// Signed as a JWS, on demand ([`ReceiptOut`]).
    Jws,
}

/// A receipt read again in one of its forms.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ReceiptRead {
    Proof(Box<ReceiptProof>),
    Jws(ReceiptOut),
}

/// A receipt again, built from the ledger as it was issued, proven against the newest checkpoint or
/// signed as a JWS; the read is logged. A receipt whose subject was erased names nobody any more: it is
/// not found.
pub async fn get(
    services: &Services,
    id: &str,
    format: ReceiptFormat,
    reader: Reader<'_>,
) -> Result<ReceiptRead> {
    let found = services.store.receipt(id).await?.ok_or(Error::NotFound("receipt"))?;
    let subject = found.subject.clone().ok_or(Error::NotFound("receipt"))?;
    let mut rebuilder = Rebuilder::new(services);
    let out = match format {
        ReceiptFormat::Jws => ReceiptRead::Jws(rebuilder.rebuild(found).await?),
        ReceiptFormat::Proof => ReceiptRead::Proof(Box::new(rebuilder.rebuild_proven(found).await?)),
    };
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
        let (subject, id, created_at, receipt, signer, _) = self.document(stored).await?;
        Ok(ReceiptOut {
            jws: signer.sign_jws(&receipt),
            id,
            subject: subject.into_string(),
            created_at: created_at.to_string(),
        })
    }

    /// The receipt `stored` stands for, with the proofs of its events against the newest checkpoint.
    pub async fn rebuild_proven(&mut self, stored: StoredReceipt) -> Result<ReceiptProof> {
        let (subject, id, created_at, receipt, _, events) = self.document(stored).await?;
        prove(self.services, id, &subject, created_at, receipt, &events).await
    }

    /// The receipt document `stored` stands for, the key that signs it, and its events.
    async fn document(
        &mut self,
        stored: StoredReceipt,
    ) -> Result<(SubjectId, String, Timestamp, ConsentReceipt, Arc<SigningKey>, Vec<Event>)> {
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
        let signing = &self.services.signing;
        let signer = stored.kid.and_then(|kid| signing.key(&kid)).unwrap_or_else(|| signing.current());
        let catalog = self.catalog(stored.catalog_version).await?;
        let receipt = build(&ctx, catalog, &events, stored.created_at, &signer);
        Ok((ctx.subject, ctx.id, stored.created_at, receipt, signer, events))
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
