### The preference centre's words in German. The catalogue's own words (purpose names and descriptions,
### notices) are shown as the catalogue has them; these messages are the page around them.
### Every message here has one of the same id in every other language (a test checks it).

## The page: its frame, the language switch and the sections

language-name = Deutsch
language-label = Sprache
title = Ihre Datenschutz-Einstellungen
intro = Sehen Sie, was { $controller } mit Ihren Daten tun darf, und ändern Sie es jederzeit. Ihre Auswahl gilt sofort, auf all Ihren Geräten und in all unseren Apps.
skip-link = Direkt zu Ihrer Auswahl
sections-label = Bereiche
choices = Meine Auswahl
choices-help = Haken Sie an, womit Sie einverstanden sind, und speichern Sie. Angehakt ist nur, was Sie selbst erlaubt haben. Sie können Ihre Meinung jederzeit ändern, so einfach, wie Sie zugestimmt haben.
history = Mein Verlauf
receipts = Meine Belege
access = Wer meine Daten genutzt hat

## My choices

what-for = Wofür
data-used = Verwendete Daten
recipients = Wer sie erhält
legal-basis = Rechtsgrundlage
signal-note = Woher diese Auswahl stammt: { $what }. Sie können sie hier ändern.
since = Ihre Auswahl gilt seit
never-chosen = Sie haben noch nichts ausgewählt.
agree-to = Ich stimme zu: { $purpose }
channels-legend = Über welche Wege (stimmen Sie zu, ohne einen zu wählen, gelten alle)
no-consent-needed = Das Folgende tun wir, ohne Sie um Einwilligung zu fragen, jeweils auf der genannten Rechtsgrundlage. Wir führen es auf, damit Sie es wissen.
others = Was wir ohne Einwilligung tun
notice-summary = Vollständigen Hinweis lesen (Version { $version })
save = Auswahl speichern
withdraw-all = Alle Einwilligungen widerrufen
withdraw-all-help = Ein Klick beendet alles, dem Sie oben zugestimmt haben. Ihre Dienste funktionieren weiter.

## After saving

saved = Ihre Auswahl ist gespeichert.
nothing-changed = Nichts geändert: Ihre Auswahl war bereits so.
what-changed = Was sich geändert hat
guardian-needed = Hier muss ein Elternteil oder eine sorgeberechtigte Person zustimmen; wir haben sie nicht eingeschaltet. Ihre übrigen Entscheidungen sind gespeichert.
receipt-label = Beleg
download = Herunterladen

## My history, my receipts, who used my data

history-empty = Noch nichts aufgezeichnet.
by = Durch
at-point = Wo
notice-version = Hinweis-Version
evidence = Nachweis
evidence-of = den Nachweis der Änderung vom { $when }
receipts-help = Jeder Beleg ist eine signierte Aufzeichnung einer Änderung, die Sie vorgenommen haben. Zum Prüfen verifizieren Sie die Signatur (JSON Web Signature, EdDSA) mit unseren öffentlichen Schlüsseln unter { $jwks }.
receipts-empty = Noch keine Belege.
access-help = Jedes Mal, wenn eines unserer Systeme Ihre Daten gelesen hat, haben wir festgehalten, welches es war und welchen Grund es angab.
access-empty = Bisher hat niemand Ihre Daten über unsere Systeme gelesen.
access-reason = Angegebener Grund
checks = Ihre Auswahl für „{ $purpose }“ wurde { $count ->
        [one] einmal
       *[other] { $count }-mal
    } geprüft, zuletzt am { $date }.

## Global Privacy Control and the footer

gpc-recorded = Ihr Browser hat ein Global-Privacy-Control-Signal gesendet. Wir haben es als Ihren Widerspruch gegen Verkauf oder Weitergabe Ihrer Daten erfasst und widerrufen: { $purposes }.
gpc-honoured = Ihr Browser sendet ein Global-Privacy-Control-Signal, und wir beachten es: Wir verkaufen Ihre Daten nicht und geben sie nicht weiter.
contact = Fragen zu Ihren Daten? Wenden Sie sich an unseren { $contact }: { $email }.

## My devices

devices = Meine Geräte
devices-help = Die mit Ihrem Konto gekoppelten Geräte und was jedes nutzen darf. Entkoppeln beendet das sofort.
devices-empty = Mit Ihrem Konto ist kein Gerät gekoppelt.
paired-since = gekoppelt seit { $date }
device-uses = Nutzt { $categories } für { $purposes }.
unpair = Entkoppeln
unpair-named = { $device } entkoppeln
device-unpaired = Das Gerät ist entkoppelt. Es kann Ihre Daten nicht mehr nutzen.
household-devices = Mit Ihrem Haushalt geteilt
household-devices-help = Diese Geräte gehören einem Haushalt, dem Sie angehören. Wenn sie Sie erkennen, folgen sie Ihren Entscheidungen; für jemanden, den sie nicht erkennen, tun sie nur, was jedes Mitglied des Haushalts erlaubt. Um den Haushalt zu verlassen, wenden Sie sich an uns.

## My requests

requests = Meine Anträge
requests-help = Sie können eine Kopie Ihrer Daten verlangen oder Ihre Daten löschen lassen. Wir antworten innerhalb eines Monats.
requests-empty = Sie haben noch keinen Antrag gestellt.
received-on = eingegangen am { $date }
due-by = Wir antworten spätestens am { $date }.
export-until = verfügbar bis { $date }
download-export = Kopie meiner Daten herunterladen (ZIP)
download-data = Kopie meiner Daten anfordern
download-data-help = Eine ZIP-Datei mit allem, was wir über Sie haben: Ihre Auswahl und ihr Verlauf, Ihre Belege, wer Ihre Daten genutzt hat, Ihre Geräte und was sie gespeichert haben. Sie ist sofort fertig und bleibt 7 Tage verfügbar.
request-received = Wir haben Ihren Antrag erhalten und antworten spätestens am { $date }; Ihre Kopie finden Sie unten unter „Meine Anträge“.
delete-data = Meine Daten löschen
delete-data-help = Sie können alles löschen lassen, was wir über Sie haben. Wir zeigen Ihnen vorher, was das bedeutet.

## Deleting all of my data

erase-title = Alle Ihre Daten löschen?
erase-intro = Wenn Sie fortfahren, geschieht sofort Folgendes:
erase-records = Alles, was unsere Produkte und Dienste über Sie gespeichert haben (etwa Aufnahmen und Messwerte), wird gelöscht, und der Schlüssel, mit dem es verschlüsselt war, wird vernichtet – keine Kopie, auch nicht in einer Sicherung, ist danach noch lesbar.
erase-devices = Ihre Geräte werden entkoppelt und nutzen Ihre Daten nicht mehr.
erase-ledger = Unsere Aufzeichnung Ihrer Entscheidungen bleibt, weil wir sie laut Gesetz nachweisen können müssen, aber nichts darin nennt Sie mehr.
erase-downstream = Wir bitten die Systeme und Partner, die Ihre Daten erhalten haben, sie ebenfalls zu löschen.
erase-page = Diese Seite funktioniert für Sie nicht mehr: Hier gibt es dann nichts mehr, was zu Ihnen gehört.
erase-final = Das lässt sich nicht rückgängig machen.
erase-confirm = Ja, meine Daten löschen
erase-cancel = Nein, zurück
erased-title = Ihre Daten sind gelöscht
erased-body = Wir haben gelöscht, was wir über Sie hatten, und die Systeme und Partner informiert, die Ihre Daten erhalten haben. Bei Fragen schreiben Sie an { $email }.

## Kinds of request and their states

type-access = Eine Kopie meiner Daten
type-portability = Meine Daten zur Mitnahme
type-erasure = Löschung meiner Daten
type-rectification = Berichtigung meiner Daten
type-restriction = Einschränkung der Nutzung meiner Daten
type-objection = Widerspruch gegen die Nutzung meiner Daten
status-received = Eingegangen
status-in-progress = In Bearbeitung
status-completed = Erledigt
status-rejected = Abgelehnt

## My data

data = Meine Daten
data-help = Was unsere Produkte und Dienste über Sie gespeichert haben, etwa Aufnahmen und Messwerte. Sie können es ansehen, herunterladen oder löschen.
data-empty = Wir haben keine Daten über Sie gespeichert.
size-bytes = { $size ->
        [one] { $size } Byte
       *[other] { $size } Bytes
    }
view = Ansehen
delete = Löschen
delete-item = Diesen Eintrag löschen ({ $what })
delete-category-label = Alles einer Art löschen
delete-category = Alles dieser Art löschen
data-deleted = Gelöscht: { $count ->
        [one] { $count } Eintrag
       *[other] { $count } Einträge
    }.
records-deleted = Außerdem haben wir { $count ->
        [one] { $count } gespeicherten Eintrag
       *[other] { $count } gespeicherte Einträge
    } gelöscht, die wir nur für das Widerrufene aufbewahrt hatten.

## Sign out everywhere

sign-out-title = Überall abmelden
sign-out-help = Ein Gerät verloren oder diese Seite auf einem fremden Computer geöffnet? Überall abmelden beendet diesen Besuch und sperrt alle bisher für Sie ausgegebenen Links und Zugänge, auf allen Ihren Geräten. Um zurückzukehren, brauchen Sie einen neuen Link.
sign-out = Überall abmelden

## Manage my data: the way in with an e-mail address and a code

start-title = Meine Daten verwalten
start-intro = Geben Sie die E-Mail-Adresse ein, die Sie uns genannt haben. Kennen wir sie, senden wir Ihnen einen Code; damit können Sie Ihre Datenschutz-Einstellungen sehen und ändern und eine Kopie Ihrer Daten erhalten oder sie löschen lassen.
start-email-label = Ihre E-Mail-Adresse
start-send = Code senden
start-invalid-email = Das sieht nicht wie eine E-Mail-Adresse aus. Bitte prüfen Sie sie und versuchen Sie es erneut.
start-too-many = Für diese Adresse oder von dieser Verbindung wurden zu oft Codes angefordert. Bitte versuchen Sie es später erneut.
start-unavailable-title = Hier nicht verfügbar
start-unavailable-body = Dieser Dienst kann keine Codes per E-Mail senden. Um Ihre Daten zu verwalten, öffnen Sie die Datenschutz-Einstellungen in unserer App oder auf unserer Website, oder schreiben Sie an { $email }.
check-mail-title = Sehen Sie in Ihr Postfach
check-mail-body = Wenn wir diese Adresse kennen, haben wir soeben einen Code mit 6 Ziffern an sie gesendet. Er gilt 10 Minuten. Nichts angekommen? Sehen Sie im Spam-Ordner nach, oder beginnen Sie neu.
start-code-label = Code aus der E-Mail (6 Ziffern)
start-continue = Weiter
start-again = Neu beginnen
start-wrong-code = { $count ->
        [0] Dieser Code stimmt nicht, und es sind keine Versuche mehr übrig. Bitte beginnen Sie neu.
        [one] Dieser Code stimmt nicht. Sie haben noch { $count } Versuch.
       *[other] Dieser Code stimmt nicht. Sie haben noch { $count } Versuche.
    }
start-code-format = Bitte geben Sie die 6 Ziffern aus der E-Mail ein.
start-ended = Dieser Code ist abgelaufen oder wurde schon verwendet. Bitte fordern Sie einen neuen an.

## Pages for a request that cannot go on

link-invalid-title = Dieser Link funktioniert nicht mehr
link-expired-title = Dieser Link ist abgelaufen
link-invalid-body = Zu Ihrer Sicherheit gelten Links zu dieser Seite nur kurze Zeit und nur für die Person, der sie geschickt wurden. Öffnen Sie die Datenschutz-Einstellungen in unserer App oder auf unserer Website, um einen neuen Link zu erhalten, oder schreiben Sie an { $email }.
link-used-title = Dieser Link wurde schon verwendet
link-used-body = Zu Ihrer Sicherheit öffnet jeder Link diese Seite nur einmal. Öffnen Sie die Datenschutz-Einstellungen in unserer App oder auf unserer Website, um einen neuen Link zu erhalten, oder schreiben Sie an { $email }.
signed-out-title = Sie sind überall abgemeldet
signed-out-body = Alle bisher für Sie ausgegebenen Links und Zugänge funktionieren nicht mehr, auf allen Ihren Geräten. Um zurückzukehren, öffnen Sie die Datenschutz-Einstellungen in unserer App oder auf unserer Website, um einen neuen Link zu erhalten, oder schreiben Sie an { $email }.
csrf-title = Bitte versuchen Sie es erneut
csrf-body = Wir konnten nicht bestätigen, dass diese Anfrage von Ihrer Datenschutz-Seite kam, und haben daher nichts geändert. Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es noch einmal.
switch-title = Hier war jemand anderes angemeldet
switch-body = In diesem Browser war jemand anderes auf der Datenschutz-Seite angemeldet. Der geöffnete Link gehört zu einer anderen Person. Mit dem Link fortfahren? Die andere Person wird hier dann abgemeldet.
switch-confirm = Mit diesem Link fortfahren
switch-cancel = Angemeldet bleiben wie bisher
not-found-title = Nicht gefunden
not-found-body = Hier gibt es nichts.
error-title = Etwas ist schiefgegangen
error-body = Wir konnten Ihre Anfrage nicht abschließen. Es wurde nichts geändert. Bitte versuchen Sie es gleich noch einmal.
back = Zurück zu meinen Datenschutz-Einstellungen

## Who made a change

actor-subject = Sie
actor-gpc = Ihr Browser (Global Privacy Control)
actor-tcf = Das Einwilligungsbanner unserer Website oder App (IAB TCF)
actor-gpp = Das Einwilligungsbanner unserer Website oder App (IAB GPP)
actor-system = Automatisch
actor-guardian = Ein Elternteil oder Vormund
actor-link = Ein verknüpfter Datensatz von Ihnen (übernommen, als Ihre Datensätze verknüpft wurden)
came-of-age-title = Sie entscheiden jetzt selbst
came-of-age-body = Als Sie noch ein Kind waren, hat ein Elternteil oder Vormund diese Entscheidungen für Sie getroffen. Ab jetzt entscheiden Sie selbst: Bestätigen Sie sie als Ihre eigenen, oder ändern Sie sie.
came-of-age-confirm = Diese Entscheidungen bestätigen
came-of-age-change = Meine Entscheidungen ändern
children = Ihre Kinder
children-help = Sie sind Elternteil oder Vormund dieser Kinder: Bis sie alt genug sind, selbst zu entscheiden, treffen Sie ihre Entscheidungen für sie.
child-label = Kind { $number }
child-manage = Entscheidungen von { $child } verwalten
child-title = Entscheidungen für { $child }
child-intro = Sie entscheiden als Elternteil oder Vormund. Ihre Änderungen werden als Änderungen eines Elternteils oder Vormunds gespeichert, und Ihr Kind sieht sie in seinem Verlauf.
child-back = Zurück zu Ihrer eigenen Seite
actor-service = Unsere Systeme

## Where a purpose stands (the badge on its card)

state-granted = Sie haben zugestimmt
state-no-consent = Sie haben nicht zugestimmt
state-withdrawn = Sie haben widerrufen
state-denied = Sie haben abgelehnt
state-expired = Ihre Einwilligung ist abgelaufen
state-objected = Sie haben widersprochen
state-restricted = Auf Ihren Wunsch eingeschränkt
state-gpc = Durch das Datenschutz-Signal Ihres Browsers widerrufen
state-not-opted-out = Eingeschaltet, bis Sie es ausschalten (das Recht an Ihrem Wohnort erlaubt dies bis zu Ihrem Widerspruch)
state-erased = Ihre Daten wurden gelöscht
state-guardian-required = Ausgeschaltet, bis ein Elternteil oder eine sorgeberechtigte Person zustimmt
state-child-protected = Für Kinder immer ausgeschaltet
state-by-basis = Braucht keine Einwilligung

## What a change did

action-grant = Zugestimmt
action-deny = Abgelehnt
action-withdraw = Widerrufen
action-object = Widersprochen
action-restrict = Eingeschränkt
action-renew = Erneuert
action-locate = Ihr Ort festgelegt
action-expire = Abgelaufen

## Legal bases

basis-consent = Ihre Einwilligung
basis-contract = Nötig für das, was Sie bei uns bestellt haben (Vertrag)
basis-legitimate-interest = Unser berechtigtes Interesse (Sie können widersprechen)
basis-legal-obligation = Gesetzlich vorgeschrieben
basis-vital-interest = Zum Schutz von Leben oder Gesundheit
basis-public-task = Eine Aufgabe im öffentlichen Interesse

## Dates and times, always in UTC

date-time = { $day }. { $month ->
        [1] Jan.
        [2] Feb.
        [3] März
        [4] Apr.
        [5] Mai
        [6] Juni
        [7] Juli
        [8] Aug.
        [9] Sep.
        [10] Okt.
        [11] Nov.
       *[12] Dez.
    } { $year }, { $time } UTC

## Objecting, and what a receipt or a download is for (read by screen readers)
object = Widersprechen
object-named = { $purpose } widersprechen
object-help = Sie können dem jederzeit widersprechen; wir hören dann damit auf, es sei denn, wir haben zwingende schutzwürdige Gründe.
receipt-of = den Beleg für { $what }
