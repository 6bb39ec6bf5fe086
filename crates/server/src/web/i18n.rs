//! The preference centre's languages: which one a request gets (`?lang=`, then the language cookie, then
//! the token's locale, then `Accept-Language`), and its words, from the Project Fluent message files under
//! `locales/` (one folder per language), compiled into the binary.
//!
//! The catalogue's own words (purpose names and descriptions, notices) come from the catalogue in the
//! page's language ([`super::names`]); these messages are the page around them.

use std::collections::HashMap;

use axum::http::HeaderMap;
use consentry_core::catalog::Basis;
use consentry_core::{Action, Reason, Timestamp};
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, langid};

// Every language's messages, compiled in and parsed on first use.
fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./src/web/locales",
        fallback_language: "en",
        // Plain text around values: no Unicode isolation marks, the page sets `lang` and `dir` itself.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// A language the page is available in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

/// A value put into a message: text or a number (numbers choose plural forms).
pub type Arg<'a> = FluentValue<'a>;

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::De];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    fn id(self) -> LanguageIdentifier {
        match self {
            Lang::En => langid!("en"),
            Lang::De => langid!("de"),
        }
    }

    /// A language tag's primary subtag, if we have that language (`de-AT` → German).
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        Self::ALL.into_iter().find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// The best of our languages for an `Accept-Language` header (highest q, then order); none: English.
    pub fn from_accept_language(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())
        else {
            return Lang::En;
        };
        let mut best: Option<(u16, Lang)> = None;
        for part in value.split(',').take(32) {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("");
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let q = (q.clamp(0.0, 1.0) * 1000.0) as u16;
            if let Some(lang) = Self::parse(tag)
                && q > 0
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// The message `id` in this language.
    pub fn t(self, id: &str) -> String {
        self.lookup(id, None)
    }

    /// The message `id` in this language, its variables (`{ $name }`) filled from `args`.
    pub fn t_with<'a>(self, id: &str, args: impl IntoIterator<Item = (&'static str, Arg<'a>)>) -> String {
        let args: HashMap<&str, Arg<'a>> = args.into_iter().collect();
        self.lookup(id, Some(&args))
    }

    fn lookup(self, id: &str, args: Option<&HashMap<&str, Arg<'_>>>) -> String {
        match LOCALES.lookup_single_language(&self.id(), id, args) {
            Ok(text) => text,
            // A message missing or broken in one language: the tests keep this from happening; a page
            // with the message's id in it is still better than no page.
            Err(e) => {
                tracing::error!(lang = self.code(), id, error = %e, "a preference-centre message failed");
                id.to_owned()
            }
        }
    }

    /// A timestamp as people read it in this language (always UTC, said so).
    pub fn date_time(self, t: Timestamp) -> String {
        let t = t.to_offset();
        self.t_with(
            "date-time",
            [
                ("day", t.day().into()),
                ("month", u8::from(t.month()).into()),
                ("year", t.year().into()),
                ("time", format!("{:02}:{:02}", t.hour(), t.minute()).into()),
            ],
        )
    }

    /// A legal basis, in words.
    pub fn basis(self, basis: Basis) -> String {
        self.t(match basis {
            Basis::Consent => "basis-consent",
            Basis::Contract => "basis-contract",
            Basis::LegitimateInterest => "basis-legitimate-interest",
            Basis::LegalObligation => "basis-legal-obligation",
            Basis::VitalInterest => "basis-vital-interest",
            Basis::PublicTask => "basis-public-task",
        })
    }

    /// What a change did, in words.
    pub fn action(self, action: Action) -> String {
        self.t(match action {
            Action::Grant => "action-grant",
            Action::Deny => "action-deny",
            Action::Withdraw => "action-withdraw",
            Action::Object => "action-object",
            Action::Restrict => "action-restrict",
            Action::Renew => "action-renew",
            Action::Expire => "action-expire",
            Action::Locate => "action-locate",
        })
    }

    /// Where a purpose stands, in words.
    pub fn reason(self, reason: Reason) -> String {
        self.t(match reason {
            Reason::Granted => "state-granted",
            Reason::NoConsent | Reason::NotCovered => "state-no-consent",
            Reason::Withdrawn => "state-withdrawn",
            Reason::Denied => "state-denied",
            Reason::Expired => "state-expired",
            Reason::Objected => "state-objected",
            Reason::Restricted => "state-restricted",
            Reason::GpcOptOut => "state-gpc",
            Reason::NotOptedOut => "state-not-opted-out",
            Reason::Erased => "state-erased",
            Reason::GuardianRequired => "state-guardian-required",
            Reason::ChildProtected => "state-child-protected",
            Reason::BasisContract
            | Reason::BasisLegitimateInterest
            | Reason::BasisLegalObligation
            | Reason::BasisVitalInterest
            | Reason::BasisPublicTask => "state-by-basis",
        })
    }

    /// A kind of data subject request, in words.
    pub fn request_type(self, kind: &str) -> String {
        self.t(match kind {
            "access" => "type-access",
            "portability" => "type-portability",
            "erasure" => "type-erasure",
            "rectification" => "type-rectification",
            "restriction" => "type-restriction",
            _ => "type-objection",
        })
    }

    /// A request's state, in words.
    pub fn request_status(self, status: &str) -> String {
        self.t(match status {
            "received" => "status-received",
            "in_progress" => "status-in-progress",
            "completed" => "status-completed",
            _ => "status-rejected",
        })
    }

    /// Who made a change, in words.
    pub fn actor(self, actor: &str) -> String {
        self.t(match actor {
            "subject" => "actor-subject",
            consentry_core::ledger::ACTOR_GPC => "actor-gpc",
            consentry_core::ledger::ACTOR_TCF => "actor-tcf",
            consentry_core::ledger::ACTOR_GPP => "actor-gpp",
            consentry_core::ledger::ACTOR_SYSTEM => "actor-system",
            // Named by pseudonym in the ledger: the person reads who, not which id.
            a if consentry_core::ledger::is_guardian_actor(a) => "actor-guardian",
            // The person's own choice from a record of theirs, carried over when the two were linked.
            a if consentry_core::ledger::is_link_actor(a) => "actor-link",
            _ => "actor-service",
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::{HeaderMap, HeaderValue, header};
    use consentry_core::Timestamp;

    use super::{LOCALES, Lang};

    /// Every message file of a language, the console's included (one loader reads them all).
    const FILES: [(Lang, &str); 2] = [
        (
            Lang::En,
            concat!(include_str!("locales/en/preferences.ftl"), include_str!("locales/en/console.ftl")),
        ),
        (
            Lang::De,
            concat!(include_str!("locales/de/preferences.ftl"), include_str!("locales/de/console.ftl")),
        ),
    ];

    /// The ids of a message file's messages (lines `id = ...` at the start of a line).
    fn ids(ftl: &str) -> BTreeSet<&str> {
        ftl.lines()
            .filter_map(|l| l.split_once(" = ").map(|(id, _)| id))
            .filter(|id| id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
            .collect()
    }

    /// The message ids the pages name: the first argument of every `.t(…)` and `.t_with(…)` that is a
    /// literal, and the ids the functions above choose (`=> "…-…"`).
    fn used() -> BTreeSet<&'static str> {
        let sources = [
            include_str!("i18n.rs"),
            include_str!("mod.rs"),
            include_str!("page.rs"),
            include_str!("sections.rs"),
            include_str!("rights.rs"),
            include_str!("signin.rs"),
            include_str!("start.rs"),
            include_str!("../console/mod.rs"),
            include_str!("../console/page.rs"),
            include_str!("../console/signin.rs"),
            include_str!("../console/overview.rs"),
            include_str!("../console/keys.rs"),
            include_str!("../console/requests.rs"),
            include_str!("../console/deliveries.rs"),
        ];
        let literal = |rest: &'static str| {
            let rest = rest.trim_start().strip_prefix('"')?;
            let id = rest.split('"').next()?;
            (!id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')).then_some(id)
        };
        let mut found = BTreeSet::new();
        for source in sources {
            for marker in [".t(", ".t_with("] {
                found.extend(
                    source.match_indices(marker).filter_map(|(at, _)| literal(&source[at + marker.len()..])),
                );
            }
            let chosen = source.match_indices("=> ").filter_map(|(at, _)| literal(&source[at + 3..]));
            found.extend(chosen.filter(|id| id.contains('-')));
        }
        found
    }

    #[test]
    fn every_message_is_in_every_language() {
        let (_, en) = FILES[0];
        let expected = ids(en);
        assert!(expected.len() > 100, "{} messages found", expected.len());
        for (lang, ftl) in FILES {
            let have = ids(ftl);
            assert_eq!(
                have.symmetric_difference(&expected).collect::<Vec<_>>(),
                Vec::<&&str>::new(),
                "{lang:?} has the same messages as English"
            );
        }
        for id in used() {
            assert!(expected.contains(id), "the code names {id:?}, which no message file has");
        }
    }

    #[test]
    fn every_message_formats_in_every_language() {
        let args: std::collections::HashMap<&str, super::Arg<'_>> = [
            "controller",
            "purpose",
            "version",
            "jwks",
            "count",
            "date",
            "purposes",
            "contact",
            "email",
            "categories",
            "device",
            "size",
            "what",
            "day",
            "month",
            "year",
            "time",
            "when",
            // The console's.
            "page",
            "counted",
            "head",
            "requests",
            "tasks",
            "events",
            "checkpoints",
            "name",
            "days",
            "destination",
            "id",
            "seconds",
            "people",
            "notice",
            // A person's page.
            "subject",
            "bytes",
            // A destination's success rate.
            "rate",
            "attempts",
            // A guardian's children.
            "number",
            "child",
        ]
        .into_iter()
        .map(|name| (name, 1.into()))
        .collect();
        for (lang, ftl) in FILES {
            for id in ids(ftl) {
                let text = LOCALES.lookup_single_language(&lang.id(), id, Some(&args));
                assert!(text.as_ref().is_ok_and(|t| !t.is_empty()), "{lang:?} {id}: {text:?}");
            }
        }
    }

    #[test]
    fn words_with_values_in_both_languages() {
        let at = Timestamp::parse("2026-03-05T09:07:00.000000Z").expect("a timestamp");
        assert_eq!(Lang::En.date_time(at), "5 Mar 2026, 09:07 UTC");
        assert_eq!(Lang::De.date_time(at), "5. März 2026, 09:07 UTC");
        let december = Timestamp::parse("2026-12-31T23:59:00.000000Z").expect("a timestamp");
        assert_eq!(Lang::De.date_time(december), "31. Dez. 2026, 23:59 UTC");
        let deleted = |lang: Lang, count: u64| lang.t_with("data-deleted", [("count", count.into())]);
        assert_eq!(deleted(Lang::En, 1), "Deleted: 1 item.");
        assert_eq!(deleted(Lang::En, 0), "Deleted: 0 items.");
        assert_eq!(deleted(Lang::De, 1), "Gelöscht: 1 Eintrag.");
        assert_eq!(deleted(Lang::De, 12), "Gelöscht: 12 Einträge.");
        let size = Lang::En.t_with("size-bytes", [("size", 123_456_789_u64.into())]);
        assert_eq!(size, "123456789 bytes");
        let intro = Lang::En.t_with("intro", [("controller", "A & B".into())]);
        assert!(intro.starts_with("See what A & B may do"), "plain text, escaped only by the page: {intro}");
    }

    fn accept(value: &'static str) -> Lang {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static(value));
        Lang::from_accept_language(&h)
    }

    #[test]
    fn accept_language_picks_the_best_we_have() {
        assert_eq!(accept("de-DE,de;q=0.9,en;q=0.8"), Lang::De);
        assert_eq!(accept("fr-FR,fr;q=0.9,de;q=0.5,en;q=0.4"), Lang::De);
        assert_eq!(accept("en-GB,de;q=0.9"), Lang::En);
        assert_eq!(accept("de;q=0,en;q=0.1"), Lang::En);
        assert_eq!(accept("fr"), Lang::En);
        assert_eq!(Lang::from_accept_language(&HeaderMap::new()), Lang::En);
    }
}
