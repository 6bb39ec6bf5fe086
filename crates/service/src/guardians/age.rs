//! What is known of a subject's age: `PUT /v1/subjects/{subject}/age` with a birth date or an age band.
//!
//! Stored encrypted under the subject's data key (as a small JSON document: the date or the band and
//! the day the band was stated), and held by the engine as an **assumed birth date**: the birth date
//! itself, or for a band the day it was stated minus the band's lower age (the person is taken to have
//! just turned that age, the youngest anyone in the band could be, so they stay a child for as long as
//! anyone in the band could). `18+` is held as an adult. The engine decides at each check whether they are a child now.
//!
//! A statement that makes a known child an adult (`18+`, an adult's birth date) is their coming of age:
//! `subject.came_of_age` is queued in the same write as the age, once per person (the store keeps when
//! it was announced, so neither the job of [`crate::workers::coming_of_age`] nor a later statement sends
//! it again), with the payload the job's has ([`came_of_age_message`]).

use consentry_core::{DEFAULT_AGE_OF_CONSENT, Engine, SubjectId, Timestamp};
use consentry_store::{OutboxMessage, StoreError};
use serde::{Deserialize, Serialize};
use time::{Date, Month};
use utoipa::ToSchema;

use crate::access::Reader;
use crate::error::{Error, Result};
use crate::events::CloudEvent;
use crate::state::Services;

/// The CloudEvents type of a coming of age.
pub const CAME_OF_AGE_TYPE: &str = "subject.came_of_age";

/// The age bands a brand may state, with their lower age (`None`: an adult whatever the place).
pub const AGE_BANDS: [(&str, Option<i32>); 4] =
    [("0-12", Some(0)), ("13-15", Some(13)), ("16-17", Some(16)), ("18+", None)];

/// How many ages the engine's warm-up and the follower read at a time.
const PAGE: u32 = 1000;

/// A subject's age: exactly one of `birth_date` and `age_band`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgeIn {
    /// The birth date, `YYYY-MM-DD`; not in the future, not before 1900.
    #[serde(default)]
    #[schema(example = "2014-05-01", format = Date)]
    pub birth_date: Option<String>,
    /// One of `0-12`, `13-15`, `16-17`, `18+`, as the person (or their guardian) stated it.
    #[serde(default)]
    #[schema(example = "13-15")]
    pub age_band: Option<String>,
}

/// A subject's age as stated, and what follows from it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgeOut {
    pub birth_date: Option<String>,
    pub age_band: Option<String>,
    /// The day the age was stated (`YYYY-MM-DD`): a band is read as of this day.
    pub stated_on: String,
    /// Whether the subject is a known child now: their (assumed) age below their place's age of digital
    /// consent.
    pub child: bool,
    /// When they come of age (midnight UTC), while they are a child.
    pub child_until: Option<String>,
    /// The age of digital consent that applies: their jurisdiction's, else 16.
    pub age_of_digital_consent: u8,
}

/// The stored form (encrypted at rest).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    age_band: Option<String>,
    stated_on: String,
}

fn parse_date(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format).ok()
}

fn format_date(d: Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    d.format(&format).unwrap_or_default()
}

/// `date` moved back `years` years (29 February to 1 March where the year has none).
fn years_before(date: Date, years: i32) -> Date {
    let year = date.year() - years;
    date.replace_year(year).or_else(|_| Date::from_calendar_date(year, Month::March, 1)).unwrap_or(Date::MIN)
}

impl Stored {
    /// The birth date the engine holds.
    fn assumed_birth(&self) -> Option<Date> {
        if let Some(d) = &self.birth_date {
            return parse_date(d);
        }
        let band = self.age_band.as_deref()?;
        let (_, lower) = AGE_BANDS.iter().find(|(b, _)| *b == band)?;
        match lower {
            Some(years) => Some(years_before(parse_date(&self.stated_on)?, *years)),
            None => Some(Date::MIN),
        }
    }
}

fn validate(body: AgeIn, today: Date) -> Result<Stored> {
    let stated_on = format_date(today);
    match (body.birth_date, body.age_band) {
        (Some(_), Some(_)) => Err(Error::validation("age_band", "give birth_date or age_band, not both")),
        (None, None) => Err(Error::validation("birth_date", "give birth_date or age_band")),
        (Some(d), None) => {
            let date = parse_date(&d)
                .ok_or_else(|| Error::validation("birth_date", "must be a date, YYYY-MM-DD"))?;
            if date > today {
                return Err(Error::validation("birth_date", "must not lie in the future"));
            }
            if date.year() < 1900 {
                return Err(Error::validation("birth_date", "must not lie before 1900"));
            }
            Ok(Stored { birth_date: Some(format_date(date)), age_band: None, stated_on })
        }
        (None, Some(band)) => {
            if !AGE_BANDS.iter().any(|(b, _)| *b == band) {
                let bands: Vec<&str> = AGE_BANDS.iter().map(|(b, _)| *b).collect();
                return Err(Error::validation("age_band", format!("must be one of {}", bands.join(", "))));
            }
            Ok(Stored { birth_date: None, age_band: Some(band), stated_on })
        }
    }
}

/// The subject's own place (if the engine knows one) and its age of digital consent (the catalogue's, or
/// the default of 16).
pub fn age_of_digital_consent(state: &Services, subject: &SubjectId) -> (Option<String>, u8) {
    let place = state.engine.subject_jurisdiction(subject.as_str());
    let age = place
        .as_deref()
        .and_then(|p| state.catalog().catalog.jurisdiction(p).and_then(|j| j.age_of_digital_consent))
        .unwrap_or(DEFAULT_AGE_OF_CONSENT);
    (place, age)
}

fn out(state: &Services, subject: &SubjectId, stored: Stored) -> AgeOut {
    let now = Timestamp::now();
    let (_, age) = age_of_digital_consent(state, subject);
    let until = state.engine.child_until(subject.as_str()).filter(|&u| now < u);
    AgeOut {
        birth_date: stored.birth_date,
        age_band: stored.age_band,
        stated_on: stored.stated_on,
        child: until.is_some(),
        child_until: until.map(|t| t.to_string()),
        age_of_digital_consent: age,
    }
}

/// Stores what is known of `subject`'s age (replacing what was) and gives it to the engine.
pub async fn set(state: &Services, subject: &SubjectId, body: AgeIn) -> Result<AgeOut> {
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let now = Timestamp::now();
    let stored = validate(body, now.to_offset().date())?;
    store(state, subject, &stored, now).await?;
    Ok(out(state, subject, stored))
}

/// The message for `subject`, who came of age `at`: the time, their place and its age of digital consent.
/// The stored payload names no one; the dispatcher adds the subject when it sends, as for every event.
pub fn came_of_age_message(
    state: &Services,
    subject: &SubjectId,
    at: Timestamp,
) -> std::result::Result<OutboxMessage, StoreError> {
    let (jurisdiction, age) = age_of_digital_consent(state, subject);
    let data = serde_json::json!({
        "came_of_age_at": at.to_string(),
        "age_of_digital_consent": age,
        "jurisdiction": jurisdiction,
    });
    let id = format!("coa_{}", hex::encode(consentry_store::random_bytes::<16>()?));
    Ok(CloudEvent::new(state.config.event_source(), id, CAME_OF_AGE_TYPE, at, data).into_outbox())
}

/// When `subject` comes of age by a statement of their age made `now` whose assumed birth date is
/// `birth`: only a known child (by the age held until now) whom it makes an adult does. A child now
/// comes of age now; one whose held age made them come of age since it was stated, but who may not have
/// been announced yet (the job looks a while later), at that moment, as the job would announce them.
async fn comes_of_age_by(
    state: &Services,
    subject: &SubjectId,
    birth: Date,
    now: Timestamp,
) -> Result<Option<Timestamp>> {
    let Some(held_until) = state.engine.child_until(subject.as_str()) else { return Ok(None) };
    let (_, age) = age_of_digital_consent(state, subject);
    if now < Engine::of_age_at(birth, age) {
        // Still a child by the new statement.
        return Ok(None);
    }
    if now < held_until {
        return Ok(Some(now));
    }
    let stated = state.store.age(&state.kek, subject).await?.map(|a| a.updated_at);
    Ok(stated.filter(|&at| at < held_until).map(|_| held_until))
}

/// Stores `stored`, stated `now`, as `subject`'s age and gives it to the engine; announces their coming
/// of age in the same write when it makes a known child an adult.
async fn store(state: &Services, subject: &SubjectId, stored: &Stored, now: Timestamp) -> Result<()> {
    let birth = stored.assumed_birth().ok_or_else(|| Error::internal("a validated age has no birth date"))?;
    let plaintext = serde_json::to_vec(stored).map_err(Error::internal)?;
    let came_of_age = match comes_of_age_by(state, subject, birth, now).await? {
        Some(at) => Some((at, came_of_age_message(state, subject, at)?)),
        None => None,
    };
    let announced = state.store.set_age(&state.kek, subject, plaintext, now, came_of_age).await?;
    state.engine.set_birth_date(subject.as_str(), birth).map_err(Error::internal)?;
    // Devices decide offline whether the subject is a child too.
    state.devices.subject_changed(subject);
    if announced {
        tracing::info!("a known child came of age by a new statement of their age");
        state.dispatch_wake.notify_one();
    }
    Ok(())
}

/// An age as an import or export line carries it: a birth date or an age band, and the day it was stated
/// (a band is read as of that day, so a child stays the same child after a move).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatedAge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_band: Option<String>,
    /// `YYYY-MM-DD`; absent: the day of the import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stated_on: Option<String>,
}

impl StatedAge {
    /// The age as [`set`] would store it, checked as of the day it was stated (not after `today`).
    fn checked(&self, today: Date) -> Result<Stored> {
        let on = match &self.stated_on {
            None => today,
            Some(d) => parse_date(d).filter(|d| *d <= today).ok_or_else(|| {
                Error::validation("stated_on", "must be a date, YYYY-MM-DD, not in the future")
            })?,
        };
        validate(AgeIn { birth_date: self.birth_date.clone(), age_band: self.age_band.clone() }, on)
    }

    /// Why this age cannot be stored, if it cannot (checked as of `now`).
    pub fn problem(&self, now: Timestamp) -> Option<String> {
        match self.checked(now.to_offset().date()) {
            Ok(_) => None,
            Err(Error::Validation { errors, .. }) => {
                Some(errors.first().map_or_else(String::new, |e| format!("{}: {}", e.path, e.message)))
            }
            Err(e) => Some(e.to_string()),
        }
    }

    /// An age as stored (its decrypted plaintext), for an export line.
    pub fn from_stored(plaintext: &[u8]) -> Option<Self> {
        let s: Stored = serde_json::from_slice(plaintext).ok()?;
        Some(StatedAge { birth_date: s.birth_date, age_band: s.age_band, stated_on: Some(s.stated_on) })
    }
}

/// Stores an age an import line carries, keeping the day it was stated, and gives it to the engine (a
/// known child it makes an adult comes of age, as with [`set`]).
pub async fn set_stated(state: &Services, subject: &SubjectId, age: &StatedAge) -> Result<()> {
    if state.erasures.is_erased(subject.as_str()) {
        return Err(Error::SubjectErased);
    }
    let now = Timestamp::now();
    let stored = age.checked(now.to_offset().date())?;
    store(state, subject, &stored, now).await
}

/// What is known of `subject`'s age; 404 when nothing is. The read is in the subject's access log.
pub async fn get(state: &Services, subject: &SubjectId, reader: Reader<'_>) -> Result<AgeOut> {
    let stored = state.store.age(&state.kek, subject).await?.ok_or(Error::NotFound("age"))?;
    let stored: Stored = serde_json::from_slice(&stored.plaintext).map_err(Error::internal)?;
    reader.log(&state.access, subject);
    Ok(out(state, subject, stored))
}

/// Gives the engine every age stored or changed at or after `since` (all of them from
/// [`Timestamp::from_micros(0)`]); returns the latest change time read, if any.
pub async fn load_since(state: &Services, since: Timestamp) -> Result<Option<Timestamp>> {
    let mut after = None;
    let mut latest = None;
    loop {
        let (page, last) = state.store.ages_since(&state.kek, since, after, PAGE).await?;
        for age in &page {
            if state.erasures.is_erased(age.subject.as_str()) {
                continue;
            }
            let birth = serde_json::from_slice::<Stored>(&age.plaintext).ok().and_then(|s| s.assumed_birth());
            let Some(birth) = birth else {
                // Never leave a stored age unheld: a subject whose age cannot be read counts as a child.
                tracing::warn!("a stored age does not decode; holding the subject as a child");
                state.engine.set_birth_date(age.subject.as_str(), Date::MAX).map_err(Error::internal)?;
                continue;
            };
            let before = state.engine.child_until(age.subject.as_str());
            state.engine.set_birth_date(age.subject.as_str(), birth).map_err(Error::internal)?;
            if state.engine.child_until(age.subject.as_str()) != before {
                state.devices.subject_changed(&age.subject);
            }
        }
        latest = page.iter().map(|a| a.updated_at).max().max(latest);
        if page.len() < PAGE as usize {
            return Ok(latest);
        }
        after = last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u8, d: u8) -> Date {
        Date::from_calendar_date(y, Month::try_from(m).expect("month"), d).expect("date")
    }

    fn body(birth: Option<&str>, band: Option<&str>) -> AgeIn {
        AgeIn { birth_date: birth.map(str::to_owned), age_band: band.map(str::to_owned) }
    }

    fn field(r: Result<Stored>) -> Option<String> {
        match r {
            Err(Error::Validation { errors, .. }) => Some(errors[0].path.clone()),
            _ => None,
        }
    }

    #[test]
    fn bad_ages_name_their_field() {
        let today = date(2026, 12, 3);
        assert_eq!(field(validate(body(Some("2027-01-01"), None), today)).as_deref(), Some("birth_date"));
        assert_eq!(field(validate(body(Some("2014-13-01"), None), today)).as_deref(), Some("birth_date"));
        assert_eq!(field(validate(body(Some("1899-12-31"), None), today)).as_deref(), Some("birth_date"));
        assert_eq!(field(validate(body(None, Some("10-12")), today)).as_deref(), Some("age_band"));
        assert_eq!(
            field(validate(body(Some("2014-05-01"), Some("13-15")), today)).as_deref(),
            Some("age_band")
        );
        assert_eq!(field(validate(body(None, None), today)).as_deref(), Some("birth_date"));
        assert!(validate(body(Some("2026-12-03"), None), today).is_ok(), "born today");
    }

    #[test]
    fn a_band_is_held_as_its_lower_age_on_the_day_it_was_stated() {
        let today = date(2026, 12, 3);
        let s = validate(body(None, Some("13-15")), today).expect("valid");
        assert_eq!(s.assumed_birth(), Some(date(2013, 12, 3)), "the youngest a 13-15 could be");
        let s = validate(body(None, Some("18+")), today).expect("valid");
        assert_eq!(s.assumed_birth(), Some(Date::MIN));
        let s = validate(body(Some("2014-05-01"), None), today).expect("valid");
        assert_eq!(s.assumed_birth(), Some(date(2014, 5, 1)));
        let s = validate(body(None, Some("0-12")), date(2028, 2, 29)).expect("valid");
        assert_eq!(s.assumed_birth(), Some(date(2028, 2, 29)));
        let leap = validate(body(None, Some("13-15")), date(2028, 2, 29)).expect("valid");
        assert_eq!(leap.assumed_birth(), Some(date(2015, 3, 1)));
    }
}
