### Die Wörter der Betriebskonsole auf Deutsch (`console-`-Nachrichten, mit denen des Präferenzzentrums geladen).
### Jede Nachricht hier gibt es mit derselben Kennung in jeder anderen Sprache (ein Test prüft das).

## Der Rahmen

console-title = Consentry-Konsole
console-skip-link = Zum Inhalt springen
console-nav-label = Bereiche der Konsole
console-nav-overview = Übersicht
console-nav-keys = Prüfung und Schlüssel
console-sign-out = Abmelden
console-role-read = darf sehen
console-role-write = darf handeln
console-back = Zurück zur Übersicht
console-yes = ja
console-no = nein
console-pages = Seiten
console-page-previous = Vorige Seite
console-page-next = Nächste Seite
console-page-number = Seite { $page }

## Anmelden

console-sign-in-title = Bei der Konsole anmelden
console-sign-in = Anmelden
console-sign-in-intro = Melden Sie sich mit einem API-Schlüssel an, der den Bereich console:read (sehen) oder console:write (handeln) hat. Der Schlüssel wird gegen eine Sitzung getauscht, die beim Abmelden oder nach acht Stunden ohne Nutzung endet.
console-sign-in-key = API-Schlüssel
console-sign-in-unknown-key = Dieser Schlüssel ist unbekannt oder wurde widerrufen.
console-sign-in-no-scope = Dieser Schlüssel hat keinen Konsolenbereich (console:read oder console:write).
console-sign-in-expired = Das Anmeldeformular war zu alt. Bitte geben Sie Ihren Schlüssel noch einmal ein.
console-signed-out-note = Sie sind abgemeldet.

## Seiten für eine Anfrage, die nicht weitergeht

console-signed-out-title = Bitte melden Sie sich an
console-signed-out-body = Ihre Konsolensitzung ist beendet (Sie haben sich abgemeldet, sie war acht Stunden unbenutzt, oder ihr Schlüssel wurde widerrufen).
console-csrf-title = Dieses Formular ist abgelaufen
console-csrf-body = Das Formular stammt nicht aus dieser Sitzung. Öffnen Sie die Seite erneut und wiederholen Sie den Schritt.
console-read-only-title = Ihr Schlüssel darf nur sehen
console-read-only-body = Ihr Schlüssel hat console:read. Um in der Konsole zu handeln, braucht es einen Schlüssel mit console:write.
console-not-found-title = Nicht gefunden
console-not-found-body = Unter dieser Adresse gibt es nichts.
console-invalid-title = Das hat nicht geklappt
console-error-title = Etwas ist schiefgegangen
console-error-body = Die Konsole konnte das gerade nicht tun. Bitte versuchen Sie es gleich noch einmal.
console-range-invalid = Der Zeitraum muss 7d, 30d oder 12m sein.
console-query-invalid = Diese Adresse enthält einen Wert, den die Seite nicht lesen kann (erwartet wird eine Zahl). Gehen Sie zurück und versuchen Sie es erneut.

## Die Übersicht

console-range-label = Zeitraum
console-range-7d = 7 Tage
console-range-30d = 30 Tage
console-range-12m = 12 Monate
console-counting = Wird gezählt: Die Diagramme enthalten Ereignisse bis { $counted } von { $head }.
console-now-title = Wo die Menschen jetzt stehen
console-purpose = Zweck
console-agreed = Eingewilligt
console-refused = Abgelehnt
console-withdrew = Widerrufen
console-other = Abgelaufen, widersprochen oder per Signal abgelehnt
console-never = Nie geantwortet
console-opt-in-rate = Einwilligungsquote
console-time-title = Im Zeitverlauf
console-chart-table = Die Zahlen als Tabelle
console-chart-grants = Einwilligungen je Zweck
console-chart-withdrawals = Widerrufe je Zweck
console-chart-opt-in = Einwilligungsquote der gegebenen Antworten, je Zweck
console-chart-gpc = Signale der Global Privacy Control
console-gpc-line = Ablehnungen per GPC
console-axis-day = Tag (UTC)
console-axis-month = Monat (UTC)
console-axis-people = Antworten
console-axis-percent = Einwilligungsquote (%)
console-axis-signals = Signale
console-chart-checks = Abfragen je Zweck
console-chart-denied = Abgelehnte Abfragen je Zweck
console-axis-checks = Abfragen
console-chart-requests = Eingegangene, erledigte und überfällig gewordene Anträge
console-axis-requests = Anträge
console-requests-received = Eingegangen
console-requests-completed = Erledigt
console-requests-overdue = Überfällig geworden
console-success-hour = Erfolg, letzte Stunde
console-success-day = Erfolg, letzter Tag
console-success-of = { $rate } % von { $attempts }
console-success-title = Erfolgsquote
console-success-line = Erfolgreiche Zustellversuche
console-chart-success-hour = Erfolgreiche Zustellversuche, letzte Stunde (je Minute)
console-chart-success-day = Erfolgreiche Zustellversuche, letzter Tag (je Stunde)
console-axis-success = Erfolgsquote (%)
console-axis-minute = Minute (UTC)
console-axis-hour = Stunde (UTC)
console-requests-title = Anträge
console-overdue = Überfällige Anträge: { $requests } (mit { $tasks } offenen Aufgaben)

## Prüfung und Schlüssel

console-audit-title = Prüfung des Ledgers
console-audit-intro = Die Prüfung liest das ganze Ledger, prüft die Hash-Kette jedes Ereignisses, baut den Merkle-Baum des Transparenzlogs aus den Ereignissen neu auf und prüft jeden signierten Checkpoint und jeden gespeicherten Baumknoten daran.
console-audit-run = Ledger prüfen
console-audit-ok = Das Ledger ist unversehrt: { $events } Ereignisse und { $checkpoints } Checkpoints geprüft. Kopf:
console-audit-broken = Das Ledger lässt sich nicht bestätigen: { $events } Ereignisse wurden vor dem ersten Fehler geprüft.
console-audit-tree-broken = Die Ereignisse des Ledgers sind unversehrt, sein Transparenzlog aber nicht: ein signierter Baum-Checkpoint oder ein gespeicherter Baumknoten passt nicht zum Baum der Ereignisse.
console-keys-title = API-Schlüssel
console-key-name = Name
console-key-scopes = Bereiche
console-key-created = Erstellt
console-key-actions = Aktionen
console-key-revoke = Widerrufen
console-key-revoke-label = Den Schlüssel { $name } widerrufen
console-key-revoked = Der Schlüssel wurde widerrufen. Seine Konsolensitzungen sind beendet.
console-key-new = Ein neuer Schlüssel
console-key-create = Schlüssel erstellen
console-key-created-title = Der Schlüssel { $name } wurde erstellt
console-key-shown-once = Kopieren Sie ihn jetzt: Er wird nur dieses eine Mal angezeigt.
console-key-invalid = Geben Sie dem Schlüssel einen Namen (Buchstaben, Ziffern, Leerzeichen, _ . -) und mindestens einen Bereich, den Ihr eigener Schlüssel hat.
console-key-name-taken = Ein aktiver Schlüssel hat bereits diesen Namen.
console-signing-title = Signaturschlüssel
console-signing-current = Signiert jetzt
console-jwks = Der veröffentlichte Schlüsselsatz (JWKS)

## Anträge

console-nav-requests = Anträge
console-any = Alle
console-filter = Filtern
console-page-first = Erste Seite
console-erased = gelöscht
console-request = Antrag
console-request-status = Stand
console-request-type = Art
console-request-only-overdue = Nur überfällige
console-requests-none = Kein Antrag passt.
console-request-filter-invalid = Diesen Filter kennt die Liste nicht.
console-request-subject = Person
console-request-received = Eingegangen
console-request-due = Fällig
console-request-tasks = Offene Aufgaben
console-request-overdue-by = seit { $days } Tagen überfällig
console-request-days-left = noch { $days } Tage
console-request-reason = Begründung
console-request-export = Export
console-request-download = Das ZIP herunterladen
console-request-until = verfügbar bis { $date }
console-request-tasks-title = Aufgaben der nachgelagerten Systeme
console-request-no-tasks = An diesem Antrag ist kein nachgelagertes System beteiligt.
console-task-completed = erledigt
console-task-pending = offen
console-task-note = Notiz (freiwillig)
console-task-complete = Die Aufgabe von { $destination } als erledigt markieren
console-request-act = Diesen Antrag bearbeiten
console-request-extend = Die Frist verlängern
console-request-months = Monate
console-request-reject = Den Antrag ablehnen
console-request-history = Verlauf
console-request-title = Antrag { $id }
console-request-extended = Die Frist wurde verlängert.
console-request-rejected = Der Antrag wurde abgelehnt.
console-request-task-done = Die Aufgabe wurde als erledigt markiert.
console-request-invalid = Das geht nicht: Geben Sie eine Begründung an (bis zu 2000 Zeichen); eine Frist lässt sich insgesamt um zwei Monate verlängern.
console-request-conflict = Der Antrag erlaubt das nicht mehr (er ist abgeschlossen, oder seine Frist wurde so weit verlängert, wie das Gesetz erlaubt).

## Zustellungen

console-nav-deliveries = Zustellungen
console-outbox-oldest = Ältestes nicht zugestelltes Ereignis
console-outbox-lag = { $seconds } Sekunden alt
console-outbox-no-lag = keines: alles wurde zugestellt
console-dead-letters = Unzustellbare Nachrichten
console-destinations-none = Es ist kein Ziel eingerichtet.
console-destination = Ziel
console-destination-kind = Art
console-destination-state = Zustand
console-destination-types = Ereignisarten
console-destination-active = aktiv
console-destination-paused = pausiert
console-destination-flagged = markiert: eine Zustellung ist gescheitert
console-delivery-filter = Zustellungen nach Zustand
console-deliveries-none = Keine Zustellung in diesem Zustand.
console-delivery = Zustellung
console-delivery-type = Ereignisart
console-delivery-status = Zustand
console-delivery-attempts = Versuche
console-delivery-error = Letzter Fehler
console-delivery-created = Erstellt
console-delivery-pending = offen
console-delivery-delivered = zugestellt
console-delivery-dead = unzustellbar
console-delivery-filter-invalid = Dieser Zustand ist weder offen noch zugestellt noch unzustellbar.
console-pause = Zustellungen pausieren
console-resume = Zustellungen fortsetzen
console-paused = Die Zustellungen an dieses Ziel sind pausiert.
console-resumed = Die Zustellungen an dieses Ziel laufen wieder.
console-replay-since = Jedes Ereignis erneut senden seit (UTC)
console-replay = Erneut senden
console-replay-from = Ab hier erneut senden
console-replay-from-label = Ab hier erneut senden (Zustellung { $id })
console-replayed = Die Ereignisse stehen wieder in der Warteschlange, in ihrer Reihenfolge.
console-replay-one = Nur diese erneut senden
console-replay-one-label = Nur diese erneut senden (Zustellung { $id })
console-replayed-one = Die unzustellbare Nachricht steht wieder in der Warteschlange, allein.
console-replay-invalid = Geben Sie eine Zeit (UTC) oder eine Zustellung an, ab der erneut gesendet wird.
console-replay-out-of-reach = Das liegt weiter zurück, als dieses Ziel erneut senden kann: Erneut gesendet werden nur Ereignisse, die seit seiner Anlage geschrieben wurden und die der Postausgang noch aufbewahrt (outbox_retention_secs, standardmäßig 7 Tage).

## Der Katalog

console-nav-catalogue = Katalog
console-conflict-title = Das hat sich inzwischen geändert
console-catalogue-version = Katalogversion
console-catalogue-applied-at = Angewendet
console-catalogue-language = Sprache
console-catalogue-applied = Katalogversion { $version } ist angewendet.
console-catalogue-upload = Neuen Katalog hochladen
console-catalogue-upload-intro = Wählen Sie das ganze Katalogdokument (YAML oder JSON, wie für PUT /v1/catalog). Noch ändert sich nichts: Die nächste Seite zeigt, was es ändern würde, und dort wenden Sie es an.
console-catalogue-file = Katalogdokument
console-catalogue-compare = Mit dem aktuellen Katalog vergleichen
console-catalogue-categories = Datenkategorien
console-catalogue-sensitive = besondere Kategorie
console-catalogue-retention = { $days } Tage aufbewahrt
console-catalogue-purposes = Zwecke
console-catalogue-basis = Rechtsgrundlage
console-catalogue-notice = Hinweis
console-catalogue-channels = Kanäle
console-catalogue-recipients = Empfänger
console-catalogue-any = alle
console-catalogue-name = Name
console-catalogue-key = Schlüssel
console-catalogue-kind = Art
console-catalogue-downstream = Erfährt jede Änderung
console-catalogue-notices = Hinweise
console-catalogue-notice-version = Version
console-catalogue-title = Titel
console-recipient-controller = Verantwortlicher
console-recipient-processor = Auftragsverarbeiter
console-recipient-third-party = Dritter
console-catalogue-unreadable = Das Formular enthielt kein lesbares Katalogdokument. Wählen Sie eine YAML- oder JSON-Datei in UTF-8 und versuchen Sie es noch einmal.
console-catalogue-empty = Die gewählte Datei ist leer.
console-catalogue-invalid = Das Dokument ist kein gültiger Katalog und kann nicht angewendet werden:
console-catalogue-stale = Der Katalog wurde seit diesem Vergleich geändert (oder das Dokument ist nicht das verglichene). Laden Sie das Dokument noch einmal hoch, um zu sehen, was es jetzt ändern würde.
console-diff-title = Was der neue Katalog ändern würde
console-diff-intro = Verglichen mit Katalogversion { $version }.
console-diff-none = Dieses Dokument gleicht dem aktuellen Katalog: Es gibt nichts anzuwenden.
console-diff-entries = Hinzugefügte, entfernte oder geänderte Einträge
console-diff-section = Abschnitt
console-diff-change = Änderung
console-diff-fields = Geänderte Felder
console-diff-added = hinzugefügt
console-diff-removed = entfernt
console-diff-changed = geändert
console-diff-notices = Hinweise mit neuer Version
console-diff-notice-new-version = sein Text ändert sich: eine neue Version
console-diff-notice-first = ein neuer Hinweis oder eine neue Sprache: die erste Version
console-diff-notice-dropped = nicht mehr im Katalog
console-diff-people = { $people ->
    [one] 1 Person hat Version { $version } von { $notice } zugestimmt.
   *[other] { $people } Personen haben Version { $version } von { $notice } zugestimmt.
}
console-diff-apply-intro = Anwenden macht dieses Dokument zur nächsten Katalogversion nach Version { $version }; das Protokoll des Servers nennt Ihren Schlüssel als den, der ihn angewendet hat.
console-diff-apply = Diesen Katalog anwenden
console-diff-back = Zurück zum Katalog
console-section-language = Sprache
console-section-data-categories = Datenkategorien
console-section-purposes = Zwecke
console-section-channels = Kanäle
console-section-recipients = Empfänger
console-section-notices = Hinweise
console-section-collection-points = Erfassungspunkte
console-section-frameworks = Signal-Frameworks
console-section-jurisdictions = Rechtsräume

## Die Prüfpunkte des Transparenzprotokolls

console-checkpoints-title = Neueste signierte Prüfpunkte
console-checkpoints-none = Noch ist kein Prüfpunkt signiert: Das Protokoll signiert einen nach der ersten Änderung.
console-checkpoint-size = Ereignisse im Baum
console-checkpoint-root = Wurzel-Hash
console-checkpoint-signed = Signiert
console-checkpoint-note = Die signierte Notiz des neuesten Prüfpunkts ({ $size } Ereignisse)
console-checkpoints-older = Ältere Prüfpunkte

## Personen: eine Person finden, ihre Seite, die Prüfung einer Quittung, ein Link zum Präferenzzentrum

console-nav-people = Personen
console-person-by-subject = Nach Subjekt-ID
console-person-subject = Subjekt-ID
console-person-open = Öffnen
console-person-by-identifier = Nach Kennung
console-person-identifier-intro = Eine E-Mail-Adresse, Telefonnummer, ein Konto oder eine andere für eine Person gespeicherte Kennung. Sie wird über ihren verschlüsselten Hash (Blind Index) gesucht und weder gespeichert noch protokolliert.
console-person-identifier-type = Art
console-person-identifier-value = Wert
console-person-find = Suchen
console-person-no-match = Niemand hat diese Kennung.
console-person-identifier-invalid = Das ist keine gültige Kennung dieser Art (eine E-Mail-Adresse, eine Telefonnummer in internationaler Form, …).
console-person-page-invalid = Diese Seite der Liste gibt es nicht.
console-person-title = Person { $subject }
console-person-erased = Diese Person wurde gelöscht (DSGVO Art. 17): Von ihren Daten ist nichts mehr zu zeigen.
console-person-unknown = Niemand mit dieser Subjekt-ID ist bekannt: kein Ledger, keine Geräte, keine Anträge.
console-person-logged = Das Öffnen dieser Seite wird mit dem Namen Ihres Schlüssels und dem Zweck „console“ in das Zugriffsprotokoll der Person geschrieben.
console-person-sections = Auf dieser Seite
console-person-choices = Entscheidungen jetzt
console-person-history = Verlauf
console-person-receipts = Quittungen
console-person-devices = Geräte
console-person-records = Einträge im Tresor
console-person-requests = Anträge
console-person-access = Wer ihre Daten gelesen hat
console-person-state = Stand
console-person-in-force = Geltende Erklärungen
console-person-none-said = nichts erklärt
console-person-allowed = erlaubt
console-person-not-allowed = nicht erlaubt
console-reason-granted = eingewilligt
console-reason-no-consent = keine Einwilligung
console-reason-withdrawn = widerrufen
console-reason-denied = abgelehnt
console-reason-expired = abgelaufen
console-reason-objected = widersprochen
console-reason-restricted = eingeschränkt
console-reason-gpc = durch Global Privacy Control abgelehnt
console-reason-not-opted-out = nicht abgelehnt (ein Ort mit Widerspruchslösung)
console-reason-erased = gelöscht
console-reason-guardian-required = ein Kind: braucht die Einwilligung einer sorgeberechtigten Person
console-reason-child-protected = ein Kind: nie für Verkauf oder Weitergabe
console-reason-basis = durch die Rechtsgrundlage, ohne Einwilligung
console-scope-categories = Kategorien
console-scope-channels = Kanäle
console-scope-recipients = Empfänger
console-scope-whole = der ganze Zweck
console-person-no-history = Für diese Person ist kein Ereignis verzeichnet.
console-person-when = Wann
console-person-action = Handlung
console-person-scope = Umfang
console-person-actor = Urheber
console-person-older = Ältere Einträge
console-person-no-receipts = Dieser Person wurde keine Quittung ausgestellt.
console-person-newest = Die neuesten { $count }, die neueste zuerst.
console-person-receipt = Quittung
console-person-issued = Ausgestellt
console-person-events = Ereignisse
console-person-verify = Prüfung
console-person-verify-label = { $id } prüfen
console-person-no-devices = Kein Gerät ist gekoppelt.
console-person-paired = Gekoppelt
console-person-last-seen = Zuletzt gesehen
console-person-never-seen = noch nicht
console-person-device-id = Geräte-ID
console-person-records-intro = Was der Tresor enthält, ohne den Inhalt: Die Konsole öffnet keine Einträge.
console-person-records-intro-write = Was der Tresor enthält. Der Inhalt wird nur für einen Zweck geöffnet, den Sie angeben und der ins Zugriffsprotokoll der Person geht.
console-record-content = Inhalt
console-record-open = Öffnen
console-record-title = Eintrag im Tresor { $id }
console-record-type = Inhaltstyp
console-record-open-title = Den Inhalt öffnen
console-record-open-intro = Sagen Sie, warum Sie ihn öffnen. Der Name Ihres Schlüssels und dieser Zweck gehen ins Zugriffsprotokoll der Person; der Inhalt wird heruntergeladen, nicht hier gezeigt.
console-record-purpose = Zweck des Öffnens
console-record-purpose-invalid = Geben Sie den Zweck des Öffnens kurz an: höchstens 128 Bytes Text (etwa 120 Buchstaben).
console-record-read-only = Ihr Schlüssel hat console:read: Er darf sehen, was der Tresor enthält, aber nicht den Inhalt öffnen.
console-person-no-records = Der Tresor enthält nichts von dieser Person.
console-person-category = Kategorie
console-person-created = Erhoben
console-person-size = Größe
console-person-bytes = { $bytes } Bytes
console-person-delete-after = Gelöscht nach
console-person-no-requests = Diese Person hat keinen Antrag gestellt.
console-person-overdue = überfällig
console-person-no-access = Noch niemand hat die Daten dieser Person gelesen.
console-person-caller = Wer
console-person-route = Wo
console-person-purpose = Angegebener Zweck
console-person-checks = Einwilligungsprüfungen
console-person-checked = { $purpose }: { $count ->
    [one] einmal geprüft
   *[other] { $count }-mal geprüft
}, zuletzt
console-person-back = Zurück zur Person
console-link-title = Ein Link zum Präferenzzentrum
console-link-intro = Erstellen Sie einen Link, der das Präferenzzentrum dieser Person einmal öffnet. Senden Sie ihn ihr; er wird nur auf der nächsten Seite gezeigt und nirgends gespeichert.
console-link-valid = Gültig für
console-link-hour = 1 Stunde
console-link-day = 1 Tag
console-link-week = 7 Tage
console-link-mint = Link erstellen
console-link-invalid = Wählen Sie, wie lange der Link gültig ist.
console-link-minted = Der Link wurde erstellt
console-link-shown-once = Kopieren Sie ihn jetzt: Er wird nur dieses eine Mal gezeigt. Er öffnet das Präferenzzentrum einmal, als diese Person.
console-link-expires = Gültig bis
console-verify-title = Quittung { $id }
console-verify-holds = Die Quittung ist gültig: Ihre Ereignisse stehen unter einem signierten Prüfpunkt im Transparenzlog des Ledgers, und ihre Signatur stimmt.
console-verify-fails = Die Quittung ist nicht gültig.
console-verify-inclusion = Nachweis der Aufnahme
console-verify-included = { $events ->
    [one] 1 Ereignis
   *[other] { $events } Ereignisse
} im signierten Prüfpunkt von { $size } Ereignissen nachgewiesen.
console-verify-signature = Signatur
console-verify-signed = gültig, signiert mit dem Schlüssel
console-verify-unsigned = lässt sich mit den veröffentlichten Schlüsseln nicht prüfen
console-verify-checkpoint-failed = Die Signatur oder Form des Prüfpunkts lässt sich nicht prüfen.
console-verify-malformed = Die Quittung oder ihr Nachweis ist fehlerhaft.
console-verify-not-included = Ein Aufnahmenachweis führt nicht zur Wurzel des Prüfpunkts.
console-verify-wrong-event = Ein nachgewiesenes Ereignis ist nicht das, das die Quittung nennt.
console-verify-wrong-subject = Die nachgewiesenen Ereignisse gehören nicht zu dieser Person.
console-verify-events = Ereignisse der Quittung
console-verify-seq = Sequenznummer
