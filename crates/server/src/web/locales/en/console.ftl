### The operator console's words in English (`console-` messages, loaded with the preference centre's).
### Every message here has one of the same id in every other language (a test checks it).

## The frame

console-title = Consentry console
console-skip-link = Skip to the content
console-nav-label = Console sections
console-nav-overview = Overview
console-nav-keys = Audit and keys
console-sign-out = Sign out
console-role-read = can look
console-role-write = can act
console-back = Back to the overview
console-yes = yes
console-no = no
console-pages = Pages
console-page-previous = Previous page
console-page-next = Next page
console-page-number = Page { $page }

## Signing in

console-sign-in-title = Sign in to the console
console-sign-in = Sign in
console-sign-in-intro = Sign in with an API key that holds the scope console:read (to look) or console:write (to act). The key is exchanged for a session that ends when you sign out or after eight hours without use.
console-sign-in-key = API key
console-sign-in-unknown-key = That key was not recognised, or it was revoked.
console-sign-in-no-scope = That key has no console scope (console:read or console:write).
console-sign-in-expired = The sign-in form was too old. Please enter your key again.
console-signed-out-note = You are signed out.

## Pages for a request that cannot go on

console-signed-out-title = Please sign in
console-signed-out-body = Your console session has ended (you signed out, it was idle for eight hours, or its key was revoked).
console-csrf-title = This form has expired
console-csrf-body = The form did not come from this session. Open the page again and repeat what you did.
console-read-only-title = Your key may only look
console-read-only-body = Your key holds console:read. Acting in the console needs a key with console:write.
console-not-found-title = Not found
console-not-found-body = There is nothing at this address.
console-invalid-title = That did not work
console-error-title = Something went wrong
console-error-body = The console could not do that just now. Please try again in a moment.
console-range-invalid = The range must be 7d, 30d or 12m.
console-query-invalid = This address has a value the page cannot read (a number is expected). Go back and try again.

## The overview

console-range-label = Range
console-range-7d = 7 days
console-range-30d = 30 days
console-range-12m = 12 months
console-counting = Counting: the charts include events up to { $counted } of { $head }.
console-now-title = Where people stand now
console-purpose = Purpose
console-agreed = Agreed
console-refused = Refused
console-withdrew = Withdrew
console-other = Expired, objected or opted out
console-never = Never answered
console-opt-in-rate = Opt-in rate
console-time-title = Over time
console-chart-table = The numbers as a table
console-chart-grants = Agreements per purpose
console-chart-withdrawals = Withdrawals per purpose
console-chart-opt-in = Opt-in rate of the answers given, per purpose
console-chart-gpc = Global Privacy Control signals
console-gpc-line = Opt-outs by GPC
console-axis-day = Day (UTC)
console-axis-month = Month (UTC)
console-axis-people = Answers
console-axis-percent = Opt-in rate (%)
console-axis-signals = Signals
console-chart-checks = Checks per purpose
console-chart-denied = Denied checks per purpose
console-axis-checks = Checks
console-chart-requests = Requests received, completed and gone overdue
console-axis-requests = Requests
console-requests-received = Received
console-requests-completed = Completed
console-requests-overdue = Gone overdue
console-success-hour = Success, last hour
console-success-day = Success, last day
console-success-of = { $rate } % of { $attempts }
console-success-title = Success rate
console-success-line = Successful attempts
console-chart-success-hour = Successful attempts, last hour (a minute each)
console-chart-success-day = Successful attempts, last day (an hour each)
console-axis-success = Success rate (%)
console-axis-minute = Minute (UTC)
console-axis-hour = Hour (UTC)
console-requests-title = Requests
console-overdue = Overdue requests: { $requests } (with { $tasks } pending tasks)

## Audit and keys

console-audit-title = Ledger verification
console-audit-intro = Verification walks the whole ledger, checks every event's hash chain, rebuilds the transparency log's Merkle tree from the events and checks every signed checkpoint and every stored tree node against them.
console-audit-run = Verify the ledger
console-audit-ok = The ledger is intact: { $events } events and { $checkpoints } checkpoints verified. Head:
console-audit-broken = The ledger does not verify: { $events } events verified before the first problem.
console-audit-tree-broken = The ledger's events verify, but its transparency log does not: a signed tree checkpoint or a stored tree node is not the tree of the events.
console-keys-title = API keys
console-key-name = Name
console-key-scopes = Scopes
console-key-created = Created
console-key-actions = Actions
console-key-revoke = Revoke
console-key-revoke-label = Revoke the key { $name }
console-key-revoked = The key was revoked. Its console sessions have ended.
console-key-new = A new key
console-key-create = Create the key
console-key-created-title = The key { $name } was created
console-key-shown-once = Copy it now: it is shown only this once.
console-key-invalid = Give the key a name (letters, digits, space, _ . -) and at least one scope that your own key holds.
console-key-name-taken = An active key already has this name.
console-signing-title = Signing keys
console-signing-current = Signs now
console-jwks = The published key set (JWKS)

## Requests

console-nav-requests = Requests
console-any = Any
console-filter = Filter
console-page-first = First page
console-erased = erased
console-request = Request
console-request-status = Status
console-request-type = Type
console-request-only-overdue = Only overdue
console-requests-none = No request matches.
console-request-filter-invalid = That filter is not one the queue knows.
console-request-subject = Person
console-request-received = Received
console-request-due = Due
console-request-tasks = Pending tasks
console-request-overdue-by = overdue by { $days } days
console-request-days-left = { $days } days left
console-request-reason = Reason
console-request-export = Export
console-request-download = Download the ZIP
console-request-until = available until { $date }
console-request-tasks-title = Downstream tasks
console-request-no-tasks = No downstream system takes part in this request.
console-task-completed = done
console-task-pending = pending
console-task-note = Note (optional)
console-task-complete = Mark the task of { $destination } done
console-request-act = Act on this request
console-request-extend = Extend the deadline
console-request-months = Months
console-request-reject = Reject the request
console-request-history = History
console-request-title = Request { $id }
console-request-extended = The deadline was extended.
console-request-rejected = The request was rejected.
console-request-task-done = The task was marked done.
console-request-invalid = That is not possible: give a reason (up to 2000 characters); a deadline can be extended by two months in all.
console-request-conflict = The request no longer allows that (it is closed, or its deadline was extended as far as the law allows).

## Deliveries

console-nav-deliveries = Deliveries
console-outbox-oldest = Oldest undelivered event
console-outbox-lag = { $seconds } seconds old
console-outbox-no-lag = none: everything was delivered
console-dead-letters = Dead letters
console-destinations-none = No destination is set up.
console-destination = Destination
console-destination-kind = Kind
console-destination-state = State
console-destination-types = Event types
console-destination-active = active
console-destination-paused = paused
console-destination-flagged = flagged: a delivery went dead
console-delivery-filter = Deliveries by state
console-deliveries-none = No delivery in this state.
console-delivery = Delivery
console-delivery-type = Event type
console-delivery-status = State
console-delivery-attempts = Attempts
console-delivery-error = Last error
console-delivery-created = Made
console-delivery-pending = pending
console-delivery-delivered = delivered
console-delivery-dead = dead
console-delivery-filter-invalid = That state is not pending, delivered or dead.
console-pause = Pause deliveries
console-resume = Resume deliveries
console-paused = Deliveries to this destination are paused.
console-resumed = Deliveries to this destination are resumed.
console-replay-since = Replay every event since (UTC)
console-replay = Replay
console-replay-from = Replay from here on
console-replay-from-label = Replay from here on (delivery { $id })
console-replayed = The events are queued again, in order.
console-replay-one = Replay this one
console-replay-one-label = Replay this one (delivery { $id })
console-replayed-one = The dead letter is queued again, alone.
console-replay-invalid = Give a time (UTC) or a delivery to replay from.
console-replay-out-of-reach = That is earlier than this destination can replay: only events written since it was created and kept by the outbox (outbox_retention_secs, 7 days by default) are sent again.

## The catalogue

console-nav-catalogue = Catalogue
console-conflict-title = That changed meanwhile
console-catalogue-version = Catalogue version
console-catalogue-applied-at = Applied
console-catalogue-language = Language
console-catalogue-applied = Catalogue version { $version } is applied.
console-catalogue-upload = Upload a new catalogue
console-catalogue-upload-intro = Choose the whole catalogue document (YAML or JSON, as for PUT /v1/catalog). Nothing changes yet: the next page shows what it would change, and you apply it from there.
console-catalogue-file = Catalogue document
console-catalogue-compare = Compare with the current catalogue
console-catalogue-categories = Data categories
console-catalogue-sensitive = special category
console-catalogue-retention = kept { $days } days
console-catalogue-purposes = Purposes
console-catalogue-basis = Legal basis
console-catalogue-notice = Notice
console-catalogue-channels = Channels
console-catalogue-recipients = Recipients
console-catalogue-any = any
console-catalogue-name = Name
console-catalogue-key = Key
console-catalogue-kind = Kind
console-catalogue-downstream = Told of every change
console-catalogue-notices = Notices
console-catalogue-notice-version = Version
console-catalogue-title = Title
console-recipient-controller = controller
console-recipient-processor = processor
console-recipient-third-party = third party
console-catalogue-unreadable = The form did not hold a readable catalogue document. Choose a YAML or JSON file in UTF-8 and try again.
console-catalogue-empty = The chosen file is empty.
console-catalogue-invalid = The document is not a valid catalogue, so it cannot be applied:
console-catalogue-stale = The catalogue was changed since this comparison was made (or the document is not the one compared). Upload the document again to see what it would change now.
console-diff-title = What the new catalogue would change
console-diff-intro = Compared with catalogue version { $version }.
console-diff-none = This document is the same as the current catalogue: there is nothing to apply.
console-diff-entries = Entries added, removed or changed
console-diff-section = Section
console-diff-change = Change
console-diff-fields = Fields that change
console-diff-added = added
console-diff-removed = removed
console-diff-changed = changed
console-diff-notices = Notices that get a new version
console-diff-notice-new-version = its text changes: a new version
console-diff-notice-first = a new notice or language: its first version
console-diff-notice-dropped = no longer in the catalogue
console-diff-people = { $people ->
    [one] 1 person agreed to version { $version } of { $notice }.
   *[other] { $people } people agreed to version { $version } of { $notice }.
}
console-diff-apply-intro = Applying makes this document the catalogue's next version after version { $version }; the server's log names your key as who applied it.
console-diff-apply = Apply this catalogue
console-diff-back = Back to the catalogue
console-section-language = Language
console-section-data-categories = Data categories
console-section-purposes = Purposes
console-section-channels = Channels
console-section-recipients = Recipients
console-section-notices = Notices
console-section-collection-points = Collection points
console-section-frameworks = Signal frameworks
console-section-jurisdictions = Jurisdictions

## The transparency log's checkpoints

console-checkpoints-title = Latest signed checkpoints
console-checkpoints-none = No checkpoint is signed yet: the log signs one after the first change.
console-checkpoint-size = Events in the tree
console-checkpoint-root = Root hash
console-checkpoint-signed = Signed
console-checkpoint-note = The signed note of the newest checkpoint ({ $size } events)
console-checkpoints-older = Older checkpoints

## People: finding a person, their page, a receipt's verification, a preference-centre link

console-nav-people = People
console-person-by-subject = By subject id
console-person-subject = Subject id
console-person-open = Open
console-person-by-identifier = By identifier
console-person-identifier-intro = An e-mail address, phone number, account or other identifier stored for a person. It is looked up by its keyed hash (blind index) and never kept or logged.
console-person-identifier-type = Type
console-person-identifier-value = Value
console-person-find = Find
console-person-no-match = Nobody holds that identifier.
console-person-identifier-invalid = That is not a valid identifier of this type (an e-mail address, a phone number in international form, ...).
console-person-page-invalid = That page of the list does not exist.
console-person-title = Person { $subject }
console-person-erased = This person was erased (GDPR Art. 17): nothing of their data is left to show.
console-person-unknown = Nobody with this subject id is known: no ledger, devices or requests.
console-person-logged = Opening this page is written into the person's access log under your key's name, with the purpose "console".
console-person-sections = On this page
console-person-choices = Choices now
console-person-history = History
console-person-receipts = Receipts
console-person-devices = Devices
console-person-records = Vault records
console-person-requests = Requests
console-person-access = Who read their data
console-person-state = State
console-person-in-force = Statements in force
console-person-none-said = nothing said
console-person-allowed = allowed
console-person-not-allowed = not allowed
console-reason-granted = agreed
console-reason-no-consent = no consent given
console-reason-withdrawn = withdrew
console-reason-denied = refused
console-reason-expired = expired
console-reason-objected = objected
console-reason-restricted = restricted
console-reason-gpc = opted out by Global Privacy Control
console-reason-not-opted-out = not opted out (an opt-out place)
console-reason-erased = erased
console-reason-guardian-required = a child: needs a guardian's consent
console-reason-child-protected = a child: never for sale or sharing
console-reason-basis = by its legal basis, without consent
console-scope-categories = categories
console-scope-channels = channels
console-scope-recipients = recipients
console-scope-whole = the whole purpose
console-person-no-history = No event is recorded for this person.
console-person-when = When
console-person-action = Action
console-person-scope = Scope
console-person-actor = Actor
console-person-older = Older entries
console-person-no-receipts = No receipt was issued to this person.
console-person-newest = The newest { $count }, newest first.
console-person-receipt = Receipt
console-person-issued = Issued
console-person-events = Events
console-person-verify = Verification
console-person-verify-label = Verify { $id }
console-person-no-devices = No device is paired.
console-person-paired = Paired
console-person-last-seen = Last seen
console-person-never-seen = not yet
console-person-device-id = Device id
console-person-records-intro = What the vault holds, without its content: the console does not open records.
console-person-records-intro-write = What the vault holds. Its content is opened only for a purpose you state, which goes into the person's access log.
console-record-content = Content
console-record-open = Open
console-record-title = Vault record { $id }
console-record-type = Content type
console-record-open-title = Open the content
console-record-open-intro = Say why you open it. Your key's name and this purpose go into the person's access log; the content is downloaded, not shown here.
console-record-purpose = Purpose of opening it
console-record-purpose-invalid = State the purpose of opening the record, briefly: at most 128 bytes of text (about 120 letters).
console-record-read-only = Your key holds console:read: it may see what the vault holds, not open its content.
console-person-no-records = The vault holds nothing of this person.
console-person-category = Category
console-person-created = Collected
console-person-size = Size
console-person-bytes = { $bytes } bytes
console-person-delete-after = Deleted after
console-person-no-requests = This person has made no request.
console-person-overdue = overdue
console-person-no-access = Nobody has read this person's data yet.
console-person-caller = Who
console-person-route = Where
console-person-purpose = Stated purpose
console-person-checks = Consent checks
console-person-checked = { $purpose }: { $count ->
    [one] checked once
   *[other] checked { $count } times
}, last
console-person-back = Back to the person
console-link-title = A preference-centre link
console-link-intro = Mint a link that opens this person's preference centre once. Send it to them; it is shown only on the next page and kept nowhere.
console-link-valid = Valid for
console-link-hour = 1 hour
console-link-day = 1 day
console-link-week = 7 days
console-link-mint = Mint the link
console-link-invalid = Choose how long the link is valid.
console-link-minted = The link was minted
console-link-shown-once = Copy it now: it is shown only this once. It opens the preference centre once, as this person.
console-link-expires = Valid until
console-verify-title = Receipt { $id }
console-verify-holds = The receipt verifies: its events are in the ledger's transparency log under a signed checkpoint, and its signature holds.
console-verify-fails = The receipt does not verify.
console-verify-inclusion = Proof of inclusion
console-verify-included = { $events ->
    [one] 1 event
   *[other] { $events } events
} proven in the signed checkpoint of { $size } events.
console-verify-signature = Signature
console-verify-signed = valid, signed with the key
console-verify-unsigned = does not verify against the published keys
console-verify-checkpoint-failed = The checkpoint's signature or form does not verify.
console-verify-malformed = The receipt or its proof is malformed.
console-verify-not-included = An inclusion proof does not lead to the checkpoint's root.
console-verify-wrong-event = A proven event is not the one the receipt names.
console-verify-wrong-subject = The proven events are not this person's.
console-verify-events = Events it records
console-verify-seq = Sequence number
