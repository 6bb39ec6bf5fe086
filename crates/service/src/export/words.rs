//! The export guide's words in English and German. The guide is written by the service layer for both
//! faces (the API's and the preference centre's download), which has no Fluent bundle of its own: the
//! few dozen phrases are a match per language here, which the compiler checks to cover both.

use consentry_core::Timestamp;

/// A language the export's guide is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    De,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
        }
    }

    /// The best of our languages for a list of language tags with optional weights, as `Accept-Language`
    /// or a token's locale give them (`de-AT`, `fr;q=0.9, de;q=0.5`); none of ours: English.
    pub fn best(tags: Option<&str>) -> Self {
        let mut best: Option<(u16, Language)> = None;
        for part in tags.unwrap_or("").split(',').take(32) {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let q = (q.clamp(0.0, 1.0) * 1000.0) as u16;
            let primary = tag.split(['-', '_']).next().unwrap_or("");
            let lang = if primary.eq_ignore_ascii_case("de") {
                Some(Language::De)
            } else if primary.eq_ignore_ascii_case("en") {
                Some(Language::En)
            } else {
                None
            };
            if let Some(lang) = lang
                && q > 0
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Language::En, |(_, l)| l)
    }

    /// A time as people read it (UTC, said so): "5 Mar 2026, 09:07 UTC", "5. März 2026, 09:07 UTC".
    pub fn date_time(self, t: Timestamp) -> String {
        let t = t.to_offset();
        let month = usize::from(u8::from(t.month())) - 1;
        let (hour, minute) = (t.hour(), t.minute());
        match self {
            Language::En => {
                const MONTHS: [&str; 12] =
                    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
                format!("{} {} {}, {hour:02}:{minute:02} UTC", t.day(), MONTHS[month], t.year())
            }
            Language::De => {
                const MONTHS: [&str; 12] = [
                    "Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sep.", "Okt.", "Nov.",
                    "Dez.",
                ];
                format!("{}. {} {}, {hour:02}:{minute:02} UTC", t.day(), MONTHS[month], t.year())
            }
        }
    }

    /// A time given as the API writes it, in words; the text itself if it is no time.
    pub fn when(self, text: &str) -> String {
        Timestamp::parse(text).map_or_else(|| text.to_owned(), |t| self.date_time(t))
    }

    /// The phrase `id` in this language.
    pub fn t(self, id: Word) -> &'static str {
        use Word::*;
        match (self, id) {
            (Language::En, Title) => "Your data",
            (Language::De, Title) => "Ihre Daten",
            (Language::En, IntroId) => "This archive holds everything we keep about you under the id",
            (Language::De, IntroId) => "Dieses Archiv enthält alles, was wir unter der Kennung",
            (Language::En, IntroAccess) => {
                "because you asked to see the data we hold about you (your right of access)."
            }
            (Language::De, IntroAccess) => {
                "über Sie speichern, weil Sie Auskunft über Ihre Daten verlangt haben (Ihr Auskunftsrecht)."
            }
            (Language::En, IntroPortability) => {
                "because you asked to take your data with you (your right to data portability)."
            }
            (Language::De, IntroPortability) => {
                "über Sie speichern, weil Sie Ihre Daten mitnehmen möchten (Ihr Recht auf Datenübertragbarkeit)."
            }
            (Language::En, Made) => "Made on",
            (Language::De, Made) => "Erstellt am",
            (Language::En, Until) => "this download stays available until",
            (Language::De, Until) => "dieser Download bleibt verfügbar bis",
            (Language::En, DataJson) => {
                "all of it in one machine-readable file (JSON), which you can give to another service."
            }
            (Language::De, DataJson) => {
                "alles in einer maschinenlesbaren Datei (JSON), die Sie einem anderen Dienst geben können."
            }
            (Language::En, Choices) => "Your choices",
            (Language::De, Choices) => "Ihre Auswahl",
            (Language::En, ChoicesEmpty) => "You have made no choice yet.",
            (Language::De, ChoicesEmpty) => "Sie haben noch nichts ausgewählt.",
            (Language::En, Purpose) => "Purpose",
            (Language::De, Purpose) => "Zweck",
            (Language::En, State) => "Your choice",
            (Language::De, State) => "Ihre Entscheidung",
            (Language::En, Since) => "Since",
            (Language::De, Since) => "Seit",
            (Language::En, Channels) => "Channels",
            (Language::De, Channels) => "Wege",
            (Language::En, AllChannels) => "All",
            (Language::De, AllChannels) => "Alle",
            (Language::En, History) => "Your history",
            (Language::De, History) => "Ihr Verlauf",
            (Language::En, HistoryHelp) => {
                "Every change you or we made, in order. Each is chained to the one before it, so any later \
                 change would show."
            }
            (Language::De, HistoryHelp) => {
                "Jede Änderung, die Sie oder wir vorgenommen haben, der Reihe nach. Jede ist mit der vorigen \
                 verkettet, sodass jede spätere Änderung auffiele."
            }
            (Language::En, When) => "When",
            (Language::De, When) => "Wann",
            (Language::En, Change) => "Change",
            (Language::De, Change) => "Änderung",
            (Language::En, By) => "By",
            (Language::De, By) => "Durch",
            (Language::En, HistoryEmpty) => "Nothing recorded yet.",
            (Language::De, HistoryEmpty) => "Noch nichts aufgezeichnet.",
            (Language::En, Devices) => "Your devices",
            (Language::De, Devices) => "Ihre Geräte",
            (Language::En, DevicesEmpty) => "No device is paired with your account.",
            (Language::De, DevicesEmpty) => "Mit Ihrem Konto ist kein Gerät gekoppelt.",
            (Language::En, Device) => "Device",
            (Language::De, Device) => "Gerät",
            (Language::En, PairedSince) => "Paired since",
            (Language::De, PairedSince) => "Gekoppelt seit",
            (Language::En, Uses) => "May use",
            (Language::De, Uses) => "Darf nutzen",
            (Language::En, Records) => "Your stored data",
            (Language::De, Records) => "Ihre gespeicherten Daten",
            (Language::En, RecordsHelp) => {
                "What our products and services stored about you. Each item is a file of its own in this archive."
            }
            (Language::De, RecordsHelp) => {
                "Was unsere Produkte und Dienste über Sie gespeichert haben. Jeder Eintrag ist eine eigene Datei \
                 in diesem Archiv."
            }
            (Language::En, RecordsEmpty) => "No stored records: we keep no files about you.",
            (Language::De, RecordsEmpty) => "Keine gespeicherten Einträge: Wir haben keine Dateien über Sie.",
            (Language::En, Collected) => "Collected",
            (Language::De, Collected) => "Erfasst",
            (Language::En, Kind) => "Kind of data",
            (Language::De, Kind) => "Art der Daten",
            (Language::En, DeletedBy) => "Deleted by",
            (Language::De, DeletedBy) => "Gelöscht bis",
            (Language::En, File) => "File",
            (Language::De, File) => "Datei",
            (Language::En, Open) => "Open",
            (Language::De, Open) => "Öffnen",
            (Language::En, Kept) => "Kept until deleted",
            (Language::De, Kept) => "Bis zur Löschung",
            (Language::En, More) => "Also in data.json",
            (Language::De, More) => "Außerdem in data.json",
            (Language::En, Receipts) => {
                "receipts: signed proofs of each change you made, which anyone can check with the public keys \
                 we publish at /.well-known/jwks.json"
            }
            (Language::De, Receipts) => {
                "Belege: signierte Nachweise jeder Änderung, die jeder mit unseren unter /.well-known/jwks.json \
                 veröffentlichten Schlüsseln prüfen kann"
            }
            (Language::En, Access) => "entries of who used your data, with the purpose they stated",
            (Language::De, Access) => "Einträge, wer Ihre Daten mit welchem angegebenen Zweck genutzt hat",
            (Language::En, Requests) => "requests you made to us, and how each stands",
            (Language::De, Requests) => "Anfragen, die Sie an uns gestellt haben, und ihr Stand",
            (Language::En, Identifiers) => "How we recognise you",
            (Language::De, Identifiers) => "Woran wir Sie erkennen",
            (Language::En, IdentifiersEmpty) => {
                "No e-mail address, phone number or other identifier is stored."
            }
            (Language::De, IdentifiersEmpty) => {
                "Keine E-Mail-Adresse, Telefonnummer oder andere Kennung ist gespeichert."
            }
            (Language::En, IdentifierType) => "Type",
            (Language::De, IdentifierType) => "Art",
            (Language::En, IdentifierValue) => "Value",
            (Language::De, IdentifierValue) => "Wert",
            (Language::En, Added) => "Added",
            (Language::De, Added) => "Hinzugefügt",
            (Language::En, Age) => "Your age",
            (Language::De, Age) => "Ihr Alter",
            (Language::En, AgeEmpty) => "We have no record of your age.",
            (Language::De, AgeEmpty) => "Ihr Alter ist bei uns nicht gespeichert.",
            (Language::En, BirthDate) => "Date of birth",
            (Language::De, BirthDate) => "Geburtsdatum",
            (Language::En, AgeBand) => "Age group",
            (Language::De, AgeBand) => "Altersgruppe",
            (Language::En, StatedOn) => "Stated on",
            (Language::De, StatedOn) => "Angegeben am",
            (Language::En, Households) => "Your households",
            (Language::De, Households) => "Ihre Haushalte",
            (Language::En, HouseholdsEmpty) => "You belong to no household.",
            (Language::De, HouseholdsEmpty) => "Sie gehören keinem Haushalt an.",
            (Language::En, Household) => "Household",
            (Language::De, Household) => "Haushalt",
            (Language::En, MemberSince) => "Member since",
            (Language::De, MemberSince) => "Mitglied seit",
            (Language::En, SharedDevices) => "Shared devices",
            (Language::De, SharedDevices) => "Geteilte Geräte",
            (Language::En, Evidence) => {
                "pieces of evidence that came with changes brought over from another system (such as the \
                 original receipt, the form or the browser used)"
            }
            (Language::De, Evidence) => {
                "Nachweise, die mit aus einem anderen System übernommenen Änderungen kamen (etwa der \
                 ursprüngliche Beleg, das Formular oder der verwendete Browser)"
            }
            (Language::En, Guardians) => "parents or guardians recorded for you, with the date of each",
            (Language::De, Guardians) => "für Sie eingetragene Eltern oder Vormünder, jeweils mit Datum",
            (Language::En, Children) => "children you are recorded as a parent or guardian of",
            (Language::De, Children) => "Kinder, für die Sie als Elternteil oder Vormund eingetragen sind",
            (Language::En, Rights) => {
                "If something here is wrong, you may ask us to correct it; you may also ask us to erase it."
            }
            (Language::De, Rights) => {
                "Wenn hier etwas falsch ist, können Sie uns bitten, es zu berichtigen; Sie können auch die \
                 Löschung verlangen."
            }
        }
    }

    /// What a change did, in words.
    pub fn action(self, action: &str) -> &'static str {
        match (self, action) {
            (Language::En, "grant") => "Agreed",
            (Language::De, "grant") => "Zugestimmt",
            (Language::En, "deny") => "Refused",
            (Language::De, "deny") => "Abgelehnt",
            (Language::En, "withdraw") => "Withdrew",
            (Language::De, "withdraw") => "Widerrufen",
            (Language::En, "object") => "Objected",
            (Language::De, "object") => "Widersprochen",
            (Language::En, "restrict") => "Restricted",
            (Language::De, "restrict") => "Eingeschränkt",
            (Language::En, "renew") => "Renewed",
            (Language::De, "renew") => "Erneuert",
            (Language::En, "locate") => "Set your place",
            (Language::De, "locate") => "Ort festgelegt",
            (Language::En, _) => "Expired",
            (Language::De, _) => "Abgelaufen",
        }
    }

    /// Who made a change, in words.
    pub fn actor(self, actor: &str) -> &'static str {
        match (self, actor) {
            (Language::En, "subject") => "You",
            (Language::De, "subject") => "Sie",
            (Language::En, consentry_core::ledger::ACTOR_GPC) => {
                "Your browser's Global Privacy Control signal"
            }
            (Language::De, consentry_core::ledger::ACTOR_GPC) => {
                "Das Global-Privacy-Control-Signal Ihres Browsers"
            }
            (Language::En, consentry_core::ledger::ACTOR_SYSTEM) => "Us, automatically",
            (Language::De, consentry_core::ledger::ACTOR_SYSTEM) => "Wir, automatisch",
            (Language::En, a) if consentry_core::ledger::is_guardian_actor(a) => "A parent or guardian",
            (Language::De, a) if consentry_core::ledger::is_guardian_actor(a) => {
                "Ein Elternteil oder Vormund"
            }
            (Language::En, a) if consentry_core::ledger::is_link_actor(a) => {
                "A linked record of yours (carried over when your records were linked)"
            }
            (Language::De, a) if consentry_core::ledger::is_link_actor(a) => {
                "Ein verknüpfter Datensatz von Ihnen (übernommen, als Ihre Datensätze verknüpft wurden)"
            }
            (Language::En, _) => "One of our services",
            (Language::De, _) => "Einer unserer Dienste",
        }
    }
}

/// The guide's phrases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    Title,
    IntroId,
    IntroAccess,
    IntroPortability,
    Made,
    Until,
    DataJson,
    Choices,
    ChoicesEmpty,
    Purpose,
    State,
    Since,
    Channels,
    AllChannels,
    History,
    HistoryHelp,
    When,
    Change,
    By,
    HistoryEmpty,
    Devices,
    DevicesEmpty,
    Device,
    PairedSince,
    Uses,
    Records,
    RecordsHelp,
    RecordsEmpty,
    Collected,
    Kind,
    DeletedBy,
    File,
    Open,
    Kept,
    More,
    Receipts,
    Access,
    Requests,
    Identifiers,
    IdentifiersEmpty,
    IdentifierType,
    IdentifierValue,
    Added,
    Age,
    AgeEmpty,
    BirthDate,
    AgeBand,
    StatedOn,
    Households,
    HouseholdsEmpty,
    Household,
    MemberSince,
    SharedDevices,
    Evidence,
    Guardians,
    Children,
    Rights,
}
