//! Verified requesters: a person without a token proves they control an e-mail address or a phone number
//! the brand attached to them, and gets a subject token for their own routes and preference centre.
//!
//! `start` answers the same (an id) whether the identifier names anyone or not, after the same work: the
//! store gets a row either way, and the mail to a known address is sent in the background, so neither the
//! answer nor its timing tells whether the address is known. A code is 6 digits from the operating
//! system's CSPRNG, sent only to a known address; what is stored is an HMAC of the verification's id and
//! the code under a key derived from the key store's pepper (for an unknown address, random bytes no code
//! hashes to, so it never confirms). `confirm` counts the attempt first (at most [`MAX_ATTEMPTS`], across
//! nodes), compares in constant time, and spends the verification once. Codes live [`CODE_TTL_SECS`].
//!
//! Starts are limited per identifier (its blind index) and per client address (a keyed hash of it, an
//! IPv6 address by its /64) over an hour, and per identifier over a day too (so waiting out the hour
//! does not buy unbounded guesses at one address's codes), in the shared store: 429 `too_many_verifications` with
//! `Retry-After` (when several limits are reached, the one that eases last). A code goes to an e-mail
//! address by mail ([`mail`], `smtp_url`) and to a phone number by SMS through the operator's gateway
//! ([`sms`], `sms_webhook_url`, retried after failures that may pass, still after the answer). Without
//! the channel an identifier's type needs nothing can be sent, and every start of that type is 503
//! `verification_unavailable` (the same for every identifier of the type, so it reveals nothing about any
//! of them).

pub mod mail;
pub mod sms;

use std::net::IpAddr;

use consentry_core::Timestamp;
use consentry_store::random_bytes;
use consentry_store::verifications::{Attempted, NewVerification, StartLimits, Started, new_verification_id};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::access::Reader;
use crate::auth::proxies::AddressBlock;
use crate::error::{Error, Result};
use crate::export::Language;
use crate::identifiers::{blind_index, normalise};
use crate::state::Services;
use crate::tokens::{MintedTokenOut, is_language_tag, mint_pair};

/// How long a code is valid, in seconds.
pub const CODE_TTL_SECS: i64 = 600;
/// Attempts at a code before the verification is dead.
pub const MAX_ATTEMPTS: u32 = 5;
/// The window the hourly start limits count over, in seconds.
const WINDOW_SECS: i64 = 3600;
/// The window the daily start limit per identifier counts over, in seconds.
const DAY_SECS: i64 = 86_400;
/// How long the token a confirmed verification gives lives, in seconds.
const TOKEN_TTL_SECS: u64 = 3600;
/// The route a confirmation is logged under in the person's access log.
pub const CONFIRM_ROUTE: &str = "POST /v1/verifications/{id}/confirm";

/// Start verifying an identifier.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartVerification {
    /// `email:` and the address, e.g. `email:ana@example.com`, or `phone:` and the number (sent by SMS),
    /// e.g. `phone:+49301234567`.
    #[schema(
        min_length = 7,
        max_length = 300,
        pattern = "^(email|phone):",
        example = "email:ana@example.com"
    )]
    pub identifier: String,
    /// The language of the mail or SMS, `en` or `de` (a BCP 47 tag; others read as English). Default: the
    /// request's `Accept-Language`.
    #[serde(default)]
    #[schema(min_length = 2, max_length = 35, pattern = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
    pub lang: Option<String>,
}

/// A verification under way. The answer is the same whether the identifier names anyone or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationStarted {
    /// Confirm it with the code the person received: `POST /v1/verifications/{id}/confirm`.
    #[schema(example = "ver_00112233445566778899aabbccddeeff")]
    pub id: String,
}

/// The code the person received.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmVerification {
    #[schema(pattern = "^[0-9]{6}$", example = "012345")]
    pub code: String,
}

/// What a start knows of its client: its address, if the face has one, and its languages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client<'a> {
    pub address: Option<IpAddr>,
    pub accept_language: Option<&'a str>,
}

fn keyed(state: &Services, purpose: &str) -> Hmac<Sha256> {
    let key = state.keys.pepper().derive(purpose);
    <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable!("HMAC takes any key"))
}

fn code_mac(state: &Services, id: &str, code: &str) -> Hmac<Sha256> {
    let mut mac = keyed(state, "verification-code");
    mac.update(id.as_bytes());
    mac.update(b"\0");
    mac.update(code.as_bytes());
    mac
}

/// A keyed hash of the client's address block ([`AddressBlock`]: an IPv4 address, or the /64 of an IPv6
/// one), as the failed-authentication limit counts it too.
fn client_index(state: &Services, address: Option<IpAddr>) -> [u8; 32] {
    let mut mac = keyed(state, "verification-client");
    match address.map(AddressBlock::of) {
        Some(block) => mac.update(block.as_bytes()),
        None => mac.update(b"unknown"),
    }
    mac.finalize().into_bytes().into()
}

/// A 6-digit code, uniformly drawn from the operating system's CSPRNG.
fn new_code() -> Result<String> {
    // The largest multiple of 10^6 that fits in a u32: values above it are drawn again, so that no code
    // is likelier than another.
    const BOUND: u32 = 4_294_000_000;
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>()?);
        if n < BOUND {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// Whether `id` has the form of a verification id (anything else is not looked up).
fn well_formed(id: &str) -> bool {
    id.strip_prefix("ver_").is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// How a code reaches the person.
enum Channel {
    Mail(mail::Mailer),
    Sms(sms::SmsSender),
}

/// Starts verifying `body.identifier`: a code goes to it if it names a subject; the answer is the same
/// either way. 503 `verification_unavailable` without the mail server (an e-mail address) or the SMS
/// gateway (a phone number), 429 `too_many_verifications` past a limit, 422 for any other identifier.
pub async fn start(
    state: &Services,
    body: StartVerification,
    client: Client<'_>,
) -> Result<VerificationStarted> {
    if body.lang.as_deref().is_some_and(|l| !is_language_tag(l)) {
        return Err(Error::validation("/lang", "must be a language tag such as `de` or `en-GB`"));
    }
    let (kind, value) = body.identifier.split_once(':').ok_or_else(|| {
        Error::validation(
            "/identifier",
            "must be email: and the address (e.g. email:ana@example.com) or phone: and the number",
        )
    })?;
    let (channel, region) = match kind {
        "email" => (state.mailer.clone().map(Channel::Mail), None),
        "phone" => (state.sms.clone().map(Channel::Sms), state.config.phone_default_region.as_deref()),
        _ => {
            return Err(Error::validation(
                "/identifier",
                "only e-mail addresses (email:...) and phone numbers (phone:...) can be verified",
            ));
        }
    };
    let Some(channel) = channel else {
        return Err(Error::VerificationUnavailable);
    };
    let address = normalise(&state.catalog().catalog, kind, value, region, ("/identifier", "/identifier"))?;
    let lang = Language::best(body.lang.as_deref().or(client.accept_language));
    let index = blind_index(state, kind, &address);
    let subject = state.store.subject_by_identifier(&index).await?;
    let id = new_verification_id()?;
    let code = new_code()?;
    let code_hash = match &subject {
        Some(_) => code_mac(state, &id, &code).finalize().into_bytes().into(),
        None => random_bytes::<32>()?,
    };
    let now = Timestamp::now();
    let limits = StartLimits {
        per_identifier: state.config.verification_per_identifier_per_hour,
        per_client: state.config.verification_per_address_per_hour,
        since: now.plus_seconds(-WINDOW_SECS),
        per_identifier_per_day: state.config.verification_per_identifier_per_day,
        day_since: now.plus_seconds(-DAY_SECS),
    };
    let row = NewVerification {
        id: id.clone(),
        identifier_index: index,
        client_index: client_index(state, client.address),
        code_hash,
        created_at: now,
        expires_at: now.plus_seconds(CODE_TTL_SECS),
    };
    match state.store.start_verification(row, limits).await? {
        Started::Stored => {}
        Started::IdentifierLimited { until } | Started::ClientLimited { until } => {
            let wait = until.micros().saturating_sub(now.micros()) / 1_000_000;
            return Err(Error::TooManyVerifications(u64::try_from(wait).unwrap_or(0).max(1)));
        }
    }
    if subject.is_some() {
        let brand = state.config.controller.name.clone();
        // In the background: the answer waits for the mail server or the SMS gateway neither for a known
        // identifier nor for an unknown one.
        let sent = id.clone();
        tokio::spawn(async move {
            match channel {
                Channel::Mail(mailer) => {
                    let (subject, text) = words(lang, &code, &brand);
                    if let Err(e) = mailer.send(&address, subject, text).await {
                        tracing::warn!(error = %e, "a verification mail could not be sent");
                    }
                }
                Channel::Sms(gateway) => {
                    let text = sms_words(lang, &code, &brand);
                    let message = sms::SmsMessage {
                        kind: "verification.code",
                        id: &sent,
                        to: &address,
                        code: &code,
                        text: &text,
                        lang: lang.code(),
                    };
                    // Retried here, after the answer (sms::SmsSender::send); never the number or the code.
                    match gateway.send(&message).await {
                        Ok(1) => {}
                        Ok(attempts) => {
                            tracing::info!(attempts, "a verification SMS was sent after retrying")
                        }
                        Err(e) => tracing::warn!(error = %e, "a verification SMS could not be sent"),
                    }
                }
            }
        });
    }
    Ok(VerificationStarted { id })
}

/// The text of the SMS in `lang`: short, one message.
fn sms_words(lang: Language, code: &str, brand: &str) -> String {
    match lang {
        Language::En => format!("{code} is your code to manage your data with {brand}. Valid 10 minutes."),
        Language::De => {
            format!("{code} ist Ihr Code, um Ihre Daten bei {brand} zu verwalten. 10 Minuten gültig.")
        }
    }
}

/// The subject and text of the mail in `lang`.
fn words(lang: Language, code: &str, brand: &str) -> (String, String) {
    match lang {
        Language::En => (
            format!("Your code: {code}"),
            format!(
                "Your code to manage your data with {brand} is:\n\n    {code}\n\nIt is valid for 10 minutes and \
                 can be used once. If you did not ask for it, ignore this message: nothing happens without \
                 the code.\n"
            ),
        ),
        Language::De => (
            format!("Ihr Code: {code}"),
            format!(
                "Ihr Code, um Ihre Daten bei {brand} zu verwalten, lautet:\n\n    {code}\n\nEr gilt 10 Minuten \
                 und nur einmal. Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese Nachricht: ohne \
                 den Code geschieht nichts.\n"
            ),
        ),
    }
}

/// Confirms verification `id` with `code`: a subject token and a preference-centre link for the person
/// the identifier names, once. A wrong code is 422 `wrong_code` with the attempts left (an unknown
/// identifier's verification answers so to every code); an expired, used or exhausted one is 410
/// `verification_ended`; an unknown id 404. `locale` is the language the token carries.
pub async fn confirm(
    state: &Services,
    id: &str,
    body: ConfirmVerification,
    locale: Option<&str>,
) -> Result<MintedTokenOut> {
    let code = body.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::validation("/code", "must be the 6 digits received"));
    }
    if !well_formed(id) {
        return Err(Error::NotFound("verification"));
    }
    let now = Timestamp::now();
    let attempt = match state.store.attempt_verification(id, now, MAX_ATTEMPTS).await? {
        Attempted::Missing => return Err(Error::NotFound("verification")),
        Attempted::Ended => return Err(Error::VerificationEnded),
        Attempted::Live(attempt) => attempt,
    };
    let wrong = Error::WrongCode { remaining: MAX_ATTEMPTS.saturating_sub(attempt.attempts) };
    if code_mac(state, id, code).verify_slice(&attempt.code_hash).is_err() {
        return Err(wrong);
    }
    // The identifier may have been removed (or its person erased) since the code went out.
    let Some(subject) = state.store.subject_by_identifier(&attempt.identifier_index).await? else {
        return Err(wrong);
    };
    if state.erasures.is_erased(subject.as_str()) {
        return Err(wrong);
    }
    if !state.store.finish_verification(id, now).await? {
        return Err(Error::VerificationEnded);
    }
    let locale = locale.map(|l| Language::best(Some(l)).code().to_owned());
    let minted = mint_pair(state, &subject, TOKEN_TTL_SECS, locale).await?;
    Reader::person(CONFIRM_ROUTE).log(&state.access, &subject);
    Ok(minted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| new_code().expect("code")).collect();
        assert!(codes.iter().all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        assert!(codes.len() > 190, "random: {} distinct of 200", codes.len());
    }

    #[test]
    fn the_mail_in_both_languages() {
        let (subject, body) = words(Language::De, "012345", "Example Brand");
        assert!(subject.contains("012345") && body.contains("Example Brand") && body.contains("10 Minuten"));
        let (subject, body) = words(Language::En, "012345", "Example Brand");
        assert!(subject.contains("012345") && body.contains("valid for 10 minutes"));
    }

    #[test]
    fn ids_are_checked_before_any_look_up() {
        assert!(well_formed(&new_verification_id().expect("id")));
        for bad in
            ["", "ver_", "ver_zz112233445566778899aabbccddeeff", "idn_00112233445566778899aabbccddeeff"]
        {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
