//! Every word the preference centre shows, in one message catalogue (English and German), and the choice
//! of language: `?lang=`, then the language cookie, then the token's locale, then `Accept-Language`.
//!
//! The catalogue's own words (purpose names and descriptions, notices) are shown as the catalogue has
//! them; these messages are the page around them.

use axum::http::HeaderMap;
use consentry_core::Timestamp;
use consentry_core::catalog::Basis;

/// A language the page is available in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::De];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
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

    pub fn messages(self) -> &'static Messages {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }

    /// A timestamp as people read it in this language (always UTC, said so).
    pub fn date_time(self, t: Timestamp) -> String {
        let t = t.to_offset();
        match self {
            Lang::En => format!(
                "{} {} {}, {:02}:{:02} UTC",
                t.day(),
                EN_MONTHS[usize::from(u8::from(t.month())) - 1],
                t.year(),
                t.hour(),
                t.minute()
            ),
            Lang::De => format!(
                "{}. {} {}, {:02}:{:02} UTC",
                t.day(),
                DE_MONTHS[usize::from(u8::from(t.month())) - 1],
                t.year(),
                t.hour(),
                t.minute()
            ),
        }
    }
}

const EN_MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DE_MONTHS: [&str; 12] =
    ["Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sep.", "Okt.", "Nov.", "Dez."];

/// Replaces `{name}` in a message with `value`.
pub fn fill(message: &str, name: &str, value: &str) -> String {
    message.replace(&format!("{{{name}}}"), value)
}

/// The page's words in one language. A struct, so a missing translation does not compile.
#[derive(Debug)]
pub struct Messages {
    pub language_name: &'static str,
    pub language_label: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub skip_link: &'static str,
    pub sections_label: &'static str,
    pub choices: &'static str,
    pub choices_help: &'static str,
    pub history: &'static str,
    pub receipts: &'static str,
    pub access: &'static str,
    pub what_for: &'static str,
    pub data_used: &'static str,
    pub recipients: &'static str,
    pub legal_basis: &'static str,
    pub since: &'static str,
    pub never_chosen: &'static str,
    pub agree_to: &'static str,
    pub channels_legend: &'static str,
    pub no_consent_needed: &'static str,
    pub others: &'static str,
    pub notice_summary: &'static str,
    pub save: &'static str,
    pub withdraw_all: &'static str,
    pub withdraw_all_help: &'static str,
    pub saved: &'static str,
    pub nothing_changed: &'static str,
    pub what_changed: &'static str,
    pub all_channels: &'static str,
    pub receipt_label: &'static str,
    pub download: &'static str,
    pub history_empty: &'static str,
    pub by: &'static str,
    pub at_point: &'static str,
    pub notice_version: &'static str,
    pub receipts_help: &'static str,
    pub receipts_empty: &'static str,
    pub access_help: &'static str,
    pub access_empty: &'static str,
    pub access_reason: &'static str,
    pub checks: &'static str,
    pub gpc_recorded: &'static str,
    pub gpc_honoured: &'static str,
    pub contact: &'static str,
    pub devices: &'static str,
    pub devices_help: &'static str,
    pub devices_empty: &'static str,
    pub paired_since: &'static str,
    pub device_uses: &'static str,
    pub unpair: &'static str,
    pub unpair_named: &'static str,
    pub device_unpaired: &'static str,
    pub requests: &'static str,
    pub requests_help: &'static str,
    pub requests_empty: &'static str,
    pub received_on: &'static str,
    pub due_by: &'static str,
    pub export_until: &'static str,
    pub download_export: &'static str,
    pub download_data: &'static str,
    pub download_data_help: &'static str,
    pub request_received: &'static str,
    pub delete_data: &'static str,
    pub delete_data_help: &'static str,
    pub erase_title: &'static str,
    pub erase_intro: &'static str,
    pub erase_records: &'static str,
    pub erase_devices: &'static str,
    pub erase_ledger: &'static str,
    pub erase_downstream: &'static str,
    pub erase_page: &'static str,
    pub erase_final: &'static str,
    pub erase_confirm: &'static str,
    pub erase_cancel: &'static str,
    pub erased_title: &'static str,
    pub erased_body: &'static str,
    pub type_access: &'static str,
    pub type_portability: &'static str,
    pub type_erasure: &'static str,
    pub type_rectification: &'static str,
    pub type_restriction: &'static str,
    pub type_objection: &'static str,
    pub status_received: &'static str,
    pub status_in_progress: &'static str,
    pub status_completed: &'static str,
    pub status_rejected: &'static str,
    pub data: &'static str,
    pub data_help: &'static str,
    pub data_empty: &'static str,
    pub size_bytes: &'static str,
    pub view: &'static str,
    pub delete: &'static str,
    pub delete_item: &'static str,
    pub delete_category_label: &'static str,
    pub delete_category: &'static str,
    pub data_deleted: &'static str,
    pub records_deleted: &'static str,
    pub link_invalid_title: &'static str,
    pub link_expired_title: &'static str,
    pub link_invalid_body: &'static str,
    pub csrf_title: &'static str,
    pub csrf_body: &'static str,
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub error_title: &'static str,
    pub error_body: &'static str,
    pub back: &'static str,
    pub actor_subject: &'static str,
    pub actor_gpc: &'static str,
    pub actor_system: &'static str,
    pub actor_service: &'static str,
    pub state_granted: &'static str,
    pub state_no_consent: &'static str,
    pub state_withdrawn: &'static str,
    pub state_denied: &'static str,
    pub state_expired: &'static str,
    pub state_objected: &'static str,
    pub state_restricted: &'static str,
    pub state_gpc: &'static str,
    pub state_erased: &'static str,
    pub state_by_basis: &'static str,
    pub action_grant: &'static str,
    pub action_deny: &'static str,
    pub action_withdraw: &'static str,
    pub action_object: &'static str,
    pub action_restrict: &'static str,
    pub action_renew: &'static str,
    pub action_expire: &'static str,
    pub basis_consent: &'static str,
    pub basis_contract: &'static str,
    pub basis_legitimate_interest: &'static str,
    pub basis_legal_obligation: &'static str,
    pub basis_vital_interest: &'static str,
    pub basis_public_task: &'static str,
}

impl Messages {
    pub fn basis(&self, basis: Basis) -> &'static str {
        match basis {
            Basis::Consent => self.basis_consent,
            Basis::Contract => self.basis_contract,
            Basis::LegitimateInterest => self.basis_legitimate_interest,
            Basis::LegalObligation => self.basis_legal_obligation,
            Basis::VitalInterest => self.basis_vital_interest,
            Basis::PublicTask => self.basis_public_task,
        }
    }

    pub fn action(&self, action: consentry_core::Action) -> &'static str {
        use consentry_core::Action as A;
        match action {
            A::Grant => self.action_grant,
            A::Deny => self.action_deny,
            A::Withdraw => self.action_withdraw,
            A::Object => self.action_object,
            A::Restrict => self.action_restrict,
            A::Renew => self.action_renew,
            A::Expire => self.action_expire,
        }
    }

    pub fn reason(&self, reason: consentry_core::Reason) -> &'static str {
        use consentry_core::Reason as R;
        match reason {
            R::Granted => self.state_granted,
            R::NoConsent | R::NotCovered => self.state_no_consent,
            R::Withdrawn => self.state_withdrawn,
            R::Denied => self.state_denied,
            R::Expired => self.state_expired,
            R::Objected => self.state_objected,
            R::Restricted => self.state_restricted,
            R::GpcOptOut => self.state_gpc,
            R::Erased => self.state_erased,
            R::BasisContract
            | R::BasisLegitimateInterest
            | R::BasisLegalObligation
            | R::BasisVitalInterest
            | R::BasisPublicTask => self.state_by_basis,
        }
    }

    /// A kind of data subject request, in words.
    pub fn request_type(&self, kind: &str) -> &'static str {
        match kind {
            "access" => self.type_access,
            "portability" => self.type_portability,
            "erasure" => self.type_erasure,
            "rectification" => self.type_rectification,
            "restriction" => self.type_restriction,
            _ => self.type_objection,
        }
    }

    /// A request's state, in words.
    pub fn request_status(&self, status: &str) -> &'static str {
        match status {
            "received" => self.status_received,
            "in_progress" => self.status_in_progress,
            "completed" => self.status_completed,
            _ => self.status_rejected,
        }
    }

    /// Who made a change, in words.
    pub fn actor(&self, actor: &str) -> &'static str {
        match actor {
            "subject" => self.actor_subject,
            consentry_core::ledger::ACTOR_GPC => self.actor_gpc,
            consentry_core::ledger::ACTOR_SYSTEM => self.actor_system,
            _ => self.actor_service,
        }
    }
}

pub static EN: Messages = Messages {
    language_name: "English",
    language_label: "Language",
    title: "Your privacy choices",
    intro: "See what {controller} may do with your data and change it at any time. Your choices apply at once, on every device and in every app of ours.",
    skip_link: "Skip to your choices",
    sections_label: "Sections",
    choices: "My choices",
    choices_help: "Tick what you agree to and save. Nothing is ticked that you did not agree to yourself. You can change your mind at any time, as easily as you agreed.",
    history: "My history",
    receipts: "My receipts",
    access: "Who used my data",
    what_for: "What it is for",
    data_used: "Data used",
    recipients: "Who receives it",
    legal_basis: "Legal basis",
    since: "Your choice holds since",
    never_chosen: "You have not made a choice yet.",
    agree_to: "I agree: {purpose}",
    channels_legend: "Through which channels (agree without choosing any, and it is all of them)",
    no_consent_needed: "We do the following without asking for your consent, each on the legal basis shown. We list it so that you know.",
    others: "What we do without asking",
    notice_summary: "Read the full notice (version {version})",
    save: "Save my choices",
    withdraw_all: "Withdraw all my consents",
    withdraw_all_help: "One click stops everything you agreed to above. Services you use keep working.",
    saved: "Your choices are saved.",
    nothing_changed: "Nothing changed: your choices were already as shown.",
    what_changed: "What changed",
    all_channels: "all channels",
    receipt_label: "Receipt",
    download: "Download",
    history_empty: "Nothing recorded yet.",
    by: "By",
    at_point: "Where",
    notice_version: "Notice version",
    receipts_help: "Each receipt is a signed record of a change you made. To check one, verify its signature (a JSON Web Signature, EdDSA) with our public keys published at {jwks}.",
    receipts_empty: "No receipts yet.",
    access_help: "Every time one of our systems read your data, we logged who it was and the reason it gave.",
    access_empty: "Nobody has read your data through our systems yet.",
    access_reason: "Reason given",
    checks: "Your choices for “{purpose}” were checked {count} times, last on {date}.",
    gpc_recorded: "Your browser sent a Global Privacy Control signal. We have recorded it as your objection to selling or sharing your data, and withdrawn: {purposes}.",
    gpc_honoured: "Your browser sends a Global Privacy Control signal, and we honour it: we do not sell or share your data.",
    contact: "Questions about your data? Contact our {contact} at {email}.",
    devices: "My devices",
    devices_help: "The devices paired with your account, and what each may use. Unpairing one stops it at once.",
    devices_empty: "No device is paired with your account.",
    paired_since: "paired since {date}",
    device_uses: "Uses {categories} for {purposes}.",
    unpair: "Unpair",
    unpair_named: "Unpair {device}",
    device_unpaired: "The device is unpaired. It can no longer use your data.",
    requests: "My requests",
    requests_help: "You may ask for a copy of your data or for your data to be deleted. We answer within one month.",
    requests_empty: "You have not made a request yet.",
    received_on: "received {date}",
    due_by: "We answer by {date} at the latest.",
    export_until: "available until {date}",
    download_export: "Download the copy of my data (ZIP)",
    download_data: "Get a copy of my data",
    download_data_help: "A ZIP file with everything we hold about you: your choices and their history, your receipts, who used your data, your devices and what they stored. It is ready at once and stays available for 7 days.",
    request_received: "We received your request. We answer by {date} at the latest; your copy is below, under My requests.",
    delete_data: "Delete my data",
    delete_data_help: "You can have everything we hold about you deleted. We show you what that means before anything happens.",
    erase_title: "Delete all your data?",
    erase_intro: "If you go on, this is what happens, at once:",
    erase_records: "Everything our products and services stored about you (such as recordings and readings) is deleted, and the key that encrypted it is destroyed, so no copy, not even in a backup, can be read again.",
    erase_devices: "Your devices are unpaired and stop using your data.",
    erase_ledger: "Our record of the choices you made stays, because the law asks us to be able to prove them, but nothing in it names you any more.",
    erase_downstream: "We tell the systems and partners that received your data to delete it too.",
    erase_page: "This page stops working for you: there is nothing left here that belongs to you.",
    erase_final: "This cannot be undone.",
    erase_confirm: "Yes, delete my data",
    erase_cancel: "No, take me back",
    erased_title: "Your data is deleted",
    erased_body: "We deleted what we held about you and told the systems and partners that received it. If you have questions, write to {email}.",
    type_access: "A copy of my data",
    type_portability: "My data to take elsewhere",
    type_erasure: "Deleting my data",
    type_rectification: "Correcting my data",
    type_restriction: "Restricting the use of my data",
    type_objection: "Objecting to the use of my data",
    status_received: "Received",
    status_in_progress: "In progress",
    status_completed: "Done",
    status_rejected: "Declined",
    data: "My data",
    data_help: "What our products and services stored about you, such as recordings and readings. You can look at it, download it or delete it.",
    data_empty: "We hold no stored data about you.",
    size_bytes: "{size} bytes",
    view: "View",
    delete: "Delete",
    delete_item: "Delete this item ({what})",
    delete_category_label: "Delete everything of one kind",
    delete_category: "Delete all of this kind",
    data_deleted: "Deleted: {count} item(s).",
    records_deleted: "We also deleted {count} stored item(s) that we kept only for what you withdrew.",
    link_invalid_title: "This link no longer works",
    link_expired_title: "This link has expired",
    link_invalid_body: "For your safety, links to this page work only for a short time and only for the person they were sent to. Open the privacy settings in our app or on our website to get a new link, or write to {email}.",
    csrf_title: "Please try again",
    csrf_body: "We could not confirm that this request came from your privacy page, so we did not change anything. Go back to the page, reload it and try again.",
    not_found_title: "Not found",
    not_found_body: "There is nothing here.",
    error_title: "Something went wrong",
    error_body: "We could not complete your request. Nothing was changed. Please try again in a moment.",
    back: "Back to my privacy choices",
    actor_subject: "You",
    actor_gpc: "Your browser (Global Privacy Control)",
    actor_system: "Automatically",
    actor_service: "Our systems",
    state_granted: "You agreed",
    state_no_consent: "You have not agreed",
    state_withdrawn: "You withdrew",
    state_denied: "You declined",
    state_expired: "Your consent expired",
    state_objected: "You objected",
    state_restricted: "Restricted at your request",
    state_gpc: "Withdrawn by your browser's privacy signal",
    state_erased: "Your data was erased",
    state_by_basis: "Does not need your consent",
    action_grant: "Agreed",
    action_deny: "Declined",
    action_withdraw: "Withdrew",
    action_object: "Objected",
    action_restrict: "Restricted",
    action_renew: "Renewed",
    action_expire: "Expired",
    basis_consent: "Your consent",
    basis_contract: "Needed to provide what you asked for (contract)",
    basis_legitimate_interest: "Our legitimate interest (you may object)",
    basis_legal_obligation: "Required by law",
    basis_vital_interest: "To protect someone's life or health",
    basis_public_task: "A task in the public interest",
};

pub static DE: Messages = Messages {
    language_name: "Deutsch",
    language_label: "Sprache",
    title: "Ihre Datenschutz-Einstellungen",
    intro: "Sehen Sie, was {controller} mit Ihren Daten tun darf, und ändern Sie es jederzeit. Ihre Auswahl gilt sofort, auf all Ihren Geräten und in all unseren Apps.",
    skip_link: "Direkt zu Ihrer Auswahl",
    sections_label: "Bereiche",
    choices: "Meine Auswahl",
    choices_help: "Haken Sie an, womit Sie einverstanden sind, und speichern Sie. Angehakt ist nur, was Sie selbst erlaubt haben. Sie können Ihre Meinung jederzeit ändern, so einfach, wie Sie zugestimmt haben.",
    history: "Mein Verlauf",
    receipts: "Meine Belege",
    access: "Wer meine Daten genutzt hat",
    what_for: "Wofür",
    data_used: "Verwendete Daten",
    recipients: "Wer sie erhält",
    legal_basis: "Rechtsgrundlage",
    since: "Ihre Auswahl gilt seit",
    never_chosen: "Sie haben noch nichts ausgewählt.",
    agree_to: "Ich stimme zu: {purpose}",
    channels_legend: "Über welche Wege (stimmen Sie zu, ohne einen zu wählen, gelten alle)",
    no_consent_needed: "Das Folgende tun wir, ohne Sie um Einwilligung zu fragen, jeweils auf der genannten Rechtsgrundlage. Wir führen es auf, damit Sie es wissen.",
    others: "Was wir ohne Einwilligung tun",
    notice_summary: "Vollständigen Hinweis lesen (Version {version})",
    save: "Auswahl speichern",
    withdraw_all: "Alle Einwilligungen widerrufen",
    withdraw_all_help: "Ein Klick beendet alles, dem Sie oben zugestimmt haben. Ihre Dienste funktionieren weiter.",
    saved: "Ihre Auswahl ist gespeichert.",
    nothing_changed: "Nichts geändert: Ihre Auswahl war bereits so.",
    what_changed: "Was sich geändert hat",
    all_channels: "alle Wege",
    receipt_label: "Beleg",
    download: "Herunterladen",
    history_empty: "Noch nichts aufgezeichnet.",
    by: "Durch",
    at_point: "Wo",
    notice_version: "Hinweis-Version",
    receipts_help: "Jeder Beleg ist eine signierte Aufzeichnung einer Änderung, die Sie vorgenommen haben. Zum Prüfen verifizieren Sie die Signatur (JSON Web Signature, EdDSA) mit unseren öffentlichen Schlüsseln unter {jwks}.",
    receipts_empty: "Noch keine Belege.",
    access_help: "Jedes Mal, wenn eines unserer Systeme Ihre Daten gelesen hat, haben wir festgehalten, welches es war und welchen Grund es angab.",
    access_empty: "Bisher hat niemand Ihre Daten über unsere Systeme gelesen.",
    access_reason: "Angegebener Grund",
    checks: "Ihre Auswahl für „{purpose}“ wurde {count}-mal geprüft, zuletzt am {date}.",
    gpc_recorded: "Ihr Browser hat ein Global-Privacy-Control-Signal gesendet. Wir haben es als Ihren Widerspruch gegen Verkauf oder Weitergabe Ihrer Daten erfasst und widerrufen: {purposes}.",
    gpc_honoured: "Ihr Browser sendet ein Global-Privacy-Control-Signal, und wir beachten es: Wir verkaufen Ihre Daten nicht und geben sie nicht weiter.",
    contact: "Fragen zu Ihren Daten? Wenden Sie sich an unseren {contact}: {email}.",
    devices: "Meine Geräte",
    devices_help: "Die mit Ihrem Konto gekoppelten Geräte und was jedes nutzen darf. Entkoppeln beendet das sofort.",
    devices_empty: "Mit Ihrem Konto ist kein Gerät gekoppelt.",
    paired_since: "gekoppelt seit {date}",
    device_uses: "Nutzt {categories} für {purposes}.",
    unpair: "Entkoppeln",
    unpair_named: "{device} entkoppeln",
    device_unpaired: "Das Gerät ist entkoppelt. Es kann Ihre Daten nicht mehr nutzen.",
    requests: "Meine Anträge",
    requests_help: "Sie können eine Kopie Ihrer Daten verlangen oder Ihre Daten löschen lassen. Wir antworten innerhalb eines Monats.",
    requests_empty: "Sie haben noch keinen Antrag gestellt.",
    received_on: "eingegangen am {date}",
    due_by: "Wir antworten spätestens am {date}.",
    export_until: "verfügbar bis {date}",
    download_export: "Kopie meiner Daten herunterladen (ZIP)",
    download_data: "Kopie meiner Daten anfordern",
    download_data_help: "Eine ZIP-Datei mit allem, was wir über Sie haben: Ihre Auswahl und ihr Verlauf, Ihre Belege, wer Ihre Daten genutzt hat, Ihre Geräte und was sie gespeichert haben. Sie ist sofort fertig und bleibt 7 Tage verfügbar.",
    request_received: "Wir haben Ihren Antrag erhalten und antworten spätestens am {date}; Ihre Kopie finden Sie unten unter „Meine Anträge“.",
    delete_data: "Meine Daten löschen",
    delete_data_help: "Sie können alles löschen lassen, was wir über Sie haben. Wir zeigen Ihnen vorher, was das bedeutet.",
    erase_title: "Alle Ihre Daten löschen?",
    erase_intro: "Wenn Sie fortfahren, geschieht sofort Folgendes:",
    erase_records: "Alles, was unsere Produkte und Dienste über Sie gespeichert haben (etwa Aufnahmen und Messwerte), wird gelöscht, und der Schlüssel, mit dem es verschlüsselt war, wird vernichtet – keine Kopie, auch nicht in einer Sicherung, ist danach noch lesbar.",
    erase_devices: "Ihre Geräte werden entkoppelt und nutzen Ihre Daten nicht mehr.",
    erase_ledger: "Unsere Aufzeichnung Ihrer Entscheidungen bleibt, weil wir sie laut Gesetz nachweisen können müssen, aber nichts darin nennt Sie mehr.",
    erase_downstream: "Wir bitten die Systeme und Partner, die Ihre Daten erhalten haben, sie ebenfalls zu löschen.",
    erase_page: "Diese Seite funktioniert für Sie nicht mehr: Hier gibt es dann nichts mehr, was zu Ihnen gehört.",
    erase_final: "Das lässt sich nicht rückgängig machen.",
    erase_confirm: "Ja, meine Daten löschen",
    erase_cancel: "Nein, zurück",
    erased_title: "Ihre Daten sind gelöscht",
    erased_body: "Wir haben gelöscht, was wir über Sie hatten, und die Systeme und Partner informiert, die Ihre Daten erhalten haben. Bei Fragen schreiben Sie an {email}.",
    type_access: "Eine Kopie meiner Daten",
    type_portability: "Meine Daten zur Mitnahme",
    type_erasure: "Löschung meiner Daten",
    type_rectification: "Berichtigung meiner Daten",
    type_restriction: "Einschränkung der Nutzung meiner Daten",
    type_objection: "Widerspruch gegen die Nutzung meiner Daten",
    status_received: "Eingegangen",
    status_in_progress: "In Bearbeitung",
    status_completed: "Erledigt",
    status_rejected: "Abgelehnt",
    data: "Meine Daten",
    data_help: "Was unsere Produkte und Dienste über Sie gespeichert haben, etwa Aufnahmen und Messwerte. Sie können es ansehen, herunterladen oder löschen.",
    data_empty: "Wir haben keine Daten über Sie gespeichert.",
    size_bytes: "{size} Bytes",
    view: "Ansehen",
    delete: "Löschen",
    delete_item: "Diesen Eintrag löschen ({what})",
    delete_category_label: "Alles einer Art löschen",
    delete_category: "Alles dieser Art löschen",
    data_deleted: "Gelöscht: {count} Eintrag/Einträge.",
    records_deleted: "Außerdem haben wir {count} gespeicherte(n) Eintrag/Einträge gelöscht, die wir nur für das Widerrufene aufbewahrt hatten.",
    link_invalid_title: "Dieser Link funktioniert nicht mehr",
    link_expired_title: "Dieser Link ist abgelaufen",
    link_invalid_body: "Zu Ihrer Sicherheit gelten Links zu dieser Seite nur kurze Zeit und nur für die Person, der sie geschickt wurden. Öffnen Sie die Datenschutz-Einstellungen in unserer App oder auf unserer Website, um einen neuen Link zu erhalten, oder schreiben Sie an {email}.",
    csrf_title: "Bitte versuchen Sie es erneut",
    csrf_body: "Wir konnten nicht bestätigen, dass diese Anfrage von Ihrer Datenschutz-Seite kam, und haben daher nichts geändert. Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es noch einmal.",
    not_found_title: "Nicht gefunden",
    not_found_body: "Hier gibt es nichts.",
    error_title: "Etwas ist schiefgegangen",
    error_body: "Wir konnten Ihre Anfrage nicht abschließen. Es wurde nichts geändert. Bitte versuchen Sie es gleich noch einmal.",
    back: "Zurück zu meinen Datenschutz-Einstellungen",
    actor_subject: "Sie",
    actor_gpc: "Ihr Browser (Global Privacy Control)",
    actor_system: "Automatisch",
    actor_service: "Unsere Systeme",
    state_granted: "Sie haben zugestimmt",
    state_no_consent: "Sie haben nicht zugestimmt",
    state_withdrawn: "Sie haben widerrufen",
    state_denied: "Sie haben abgelehnt",
    state_expired: "Ihre Einwilligung ist abgelaufen",
    state_objected: "Sie haben widersprochen",
    state_restricted: "Auf Ihren Wunsch eingeschränkt",
    state_gpc: "Durch das Datenschutz-Signal Ihres Browsers widerrufen",
    state_erased: "Ihre Daten wurden gelöscht",
    state_by_basis: "Braucht keine Einwilligung",
    action_grant: "Zugestimmt",
    action_deny: "Abgelehnt",
    action_withdraw: "Widerrufen",
    action_object: "Widersprochen",
    action_restrict: "Eingeschränkt",
    action_renew: "Erneuert",
    action_expire: "Abgelaufen",
    basis_consent: "Ihre Einwilligung",
    basis_contract: "Nötig für das, was Sie bei uns bestellt haben (Vertrag)",
    basis_legitimate_interest: "Unser berechtigtes Interesse (Sie können widersprechen)",
    basis_legal_obligation: "Gesetzlich vorgeschrieben",
    basis_vital_interest: "Zum Schutz von Leben oder Gesundheit",
    basis_public_task: "Eine Aufgabe im öffentlichen Interesse",
};

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::Lang;

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
