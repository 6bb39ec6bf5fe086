### The preference centre's words in English. The catalogue's own words (purpose names and descriptions,
### notices) are shown as the catalogue has them; these messages are the page around them.
### Every message here has one of the same id in every other language (a test checks it).

## The page: its frame, the language switch and the sections

language-name = English
language-label = Language
title = Your privacy choices
intro = See what { $controller } may do with your data and change it at any time. Your choices apply at once, on every device and in every app of ours.
skip-link = Skip to your choices
sections-label = Sections
choices = My choices
choices-help = Tick what you agree to and save. Nothing is ticked that you did not agree to yourself. You can change your mind at any time, as easily as you agreed.
history = My history
receipts = My receipts
access = Who used my data

## My choices

what-for = What it is for
data-used = Data used
recipients = Who receives it
legal-basis = Legal basis
signal-note = Where this choice came from: { $what }. You can change it here.
since = Your choice holds since
never-chosen = You have not made a choice yet.
agree-to = I agree: { $purpose }
channels-legend = Through which channels (agree without choosing any, and it is all of them)
no-consent-needed = We do the following without asking for your consent, each on the legal basis shown. We list it so that you know.
others = What we do without asking
notice-summary = Read the full notice (version { $version })
save = Save my choices
withdraw-all = Withdraw all my consents
withdraw-all-help = One click stops everything you agreed to above. Services you use keep working.

## After saving

saved = Your choices are saved.
nothing-changed = Nothing changed: your choices were already as shown.
what-changed = What changed
guardian-needed = A parent or guardian must agree to these; we did not switch them on. Your other choices are saved.
receipt-label = Receipt
download = Download

## My history, my receipts, who used my data

history-empty = Nothing recorded yet.
by = By
at-point = Where
notice-version = Notice version
evidence = Evidence
evidence-of = the evidence of the change on { $when }
receipts-help = Each receipt is a signed record of a change you made. To check one, verify its signature (a JSON Web Signature, EdDSA) with our public keys published at { $jwks }.
receipts-empty = No receipts yet.
access-help = Every time one of our systems read your data, we logged who it was and the reason it gave.
access-empty = Nobody has read your data through our systems yet.
access-reason = Reason given
checks = Your choices for “{ $purpose }” were checked { $count ->
        [one] once
       *[other] { $count } times
    }, last on { $date }.

## Global Privacy Control and the footer

gpc-recorded = Your browser sent a Global Privacy Control signal. We have recorded it as your objection to selling or sharing your data, and withdrawn: { $purposes }.
gpc-honoured = Your browser sends a Global Privacy Control signal, and we honour it: we do not sell or share your data.
contact = Questions about your data? Contact our { $contact } at { $email }.

## My devices

devices = My devices
devices-help = The devices paired with your account, and what each may use. Unpairing one stops it at once.
devices-empty = No device is paired with your account.
paired-since = paired since { $date }
device-uses = Uses { $categories } for { $purposes }.
unpair = Unpair
unpair-named = Unpair { $device }
device-unpaired = The device is unpaired. It can no longer use your data.
household-devices = Shared with your household
household-devices-help = These devices belong to a household you are a member of. When they recognise you, they follow your choices; for anyone they do not recognise, they do only what every member of the household allows. To leave the household, ask us.

## My requests

requests = My requests
requests-help = You may ask for a copy of your data or for your data to be deleted. We answer within one month.
requests-empty = You have not made a request yet.
received-on = received { $date }
due-by = We answer by { $date } at the latest.
export-until = available until { $date }
download-export = Download the copy of my data (ZIP)
download-data = Get a copy of my data
download-data-help = A ZIP file with everything we hold about you: your choices and their history, your receipts, who used your data, your devices and what they stored. It is ready at once and stays available for 7 days.
request-received = We received your request. We answer by { $date } at the latest; your copy is below, under My requests.
delete-data = Delete my data
delete-data-help = You can have everything we hold about you deleted. We show you what that means before anything happens.

## Deleting all of my data

erase-title = Delete all your data?
erase-intro = If you go on, this is what happens, at once:
erase-records = Everything our products and services stored about you (such as recordings and readings) is deleted, and the key that encrypted it is destroyed, so no copy, not even in a backup, can be read again.
erase-devices = Your devices are unpaired and stop using your data.
erase-ledger = Our record of the choices you made stays, because the law asks us to be able to prove them, but nothing in it names you any more.
erase-downstream = We tell the systems and partners that received your data to delete it too.
erase-page = This page stops working for you: there is nothing left here that belongs to you.
erase-final = This cannot be undone.
erase-confirm = Yes, delete my data
erase-cancel = No, take me back
erased-title = Your data is deleted
erased-body = We deleted what we held about you and told the systems and partners that received it. If you have questions, write to { $email }.

## Kinds of request and their states

type-access = A copy of my data
type-portability = My data to take elsewhere
type-erasure = Deleting my data
type-rectification = Correcting my data
type-restriction = Restricting the use of my data
type-objection = Objecting to the use of my data
status-received = Received
status-in-progress = In progress
status-completed = Done
status-rejected = Declined

## My data

data = My data
data-help = What our products and services stored about you, such as recordings and readings. You can look at it, download it or delete it.
data-empty = We hold no stored data about you.
size-bytes = { $size ->
        [one] { $size } byte
       *[other] { $size } bytes
    }
view = View
delete = Delete
delete-item = Delete this item ({ $what })
delete-category-label = Delete everything of one kind
delete-category = Delete all of this kind
data-deleted = Deleted: { $count ->
        [one] { $count } item
       *[other] { $count } items
    }.
records-deleted = We also deleted { $count ->
        [one] { $count } stored item
       *[other] { $count } stored items
    } that we kept only for what you withdrew.

## Sign out everywhere

sign-out-title = Sign out everywhere
sign-out-help = Lost a device, or opened this page on a computer that is not yours? Signing out everywhere ends this visit and stops every link and every access given out for you until now, on all your devices. To come back, you need a new link.
sign-out = Sign out everywhere

## Manage my data: the way in with an e-mail address and a code

start-title = Manage my data
start-intro = Enter the e-mail address you gave us. If we know it, we send you a code; with it you can see and change your privacy choices and get a copy of your data or have it deleted.
start-email-label = Your e-mail address
start-send = Send me a code
start-invalid-email = This does not look like an e-mail address. Please check it and try again.
start-too-many = Codes were asked for too often for this address or from this connection. Please try again later.
start-unavailable-title = Not available here
start-unavailable-body = This service cannot send codes by e-mail. To manage your data, open the privacy settings in our app or on our website, or write to { $email }.
check-mail-title = Check your mail
check-mail-body = If we know this address, we have just sent a code with 6 digits to it. It is valid for 10 minutes. Nothing arrived? Look in your spam folder, or start again.
start-code-label = Code from the e-mail (6 digits)
start-continue = Continue
start-again = Start again
start-wrong-code = { $count ->
        [0] This code is not right, and there are no attempts left. Please start again.
        [one] This code is not right. You have { $count } more attempt.
       *[other] This code is not right. You have { $count } more attempts.
    }
start-code-format = Please enter the 6 digits from the e-mail.
start-ended = This code has expired or was already used. Please ask for a new one.

## Pages for a request that cannot go on

link-invalid-title = This link no longer works
link-expired-title = This link has expired
link-invalid-body = For your safety, links to this page work only for a short time and only for the person they were sent to. Open the privacy settings in our app or on our website to get a new link, or write to { $email }.
link-used-title = This link was already used
link-used-body = For your safety, each link to this page opens it only once. Open the privacy settings in our app or on our website to get a new link, or write to { $email }.
signed-out-title = You are signed out everywhere
signed-out-body = Every link and every access given out for you until now has stopped working, on all your devices. To come back, open the privacy settings in our app or on our website to get a new link, or write to { $email }.
csrf-title = Please try again
csrf-body = We could not confirm that this request came from your privacy page, so we did not change anything. Go back to the page, reload it and try again.
switch-title = Someone else was signed in
switch-body = This browser was signed in to the privacy page of someone else. The link you opened is for another person. Continue with the link? The other person is then signed out here.
switch-confirm = Continue with this link
switch-cancel = Stay signed in as before
not-found-title = Not found
not-found-body = There is nothing here.
error-title = Something went wrong
error-body = We could not complete your request. Nothing was changed. Please try again in a moment.
back = Back to my privacy choices

## Who made a change

actor-subject = You
actor-gpc = Your browser (Global Privacy Control)
actor-tcf = The consent banner of our website or app (IAB TCF)
actor-gpp = The consent banner of our website or app (IAB GPP)
actor-system = Automatically
actor-guardian = A parent or guardian
actor-link = A linked record of yours (carried over when your records were linked)
came-of-age-title = You decide now
came-of-age-body = While you were a child, a parent or guardian made these choices for you. From now on, you decide: confirm them as your own, or change them.
came-of-age-confirm = Confirm these choices
came-of-age-change = Change my choices
children = Your children
children-help = You are a parent or guardian of these children: until they are old enough to decide, you make their choices for them.
child-label = Child { $number }
child-manage = Manage the choices of { $child }
child-title = Choices for { $child }
child-intro = You are choosing as their parent or guardian. Your changes are recorded as made by a parent or guardian, and your child sees them in their history.
child-back = Back to your own page
actor-service = Our systems

## Where a purpose stands (the badge on its card)

state-granted = You agreed
state-no-consent = You have not agreed
state-withdrawn = You withdrew
state-denied = You declined
state-expired = Your consent expired
state-objected = You objected
state-restricted = Restricted at your request
state-gpc = Withdrawn by your browser's privacy signal
state-not-opted-out = On until you turn it off (the law where you live lets this run until you opt out)
state-erased = Your data was erased
state-guardian-required = Off until a parent or guardian agrees
state-child-protected = Always off for children
state-by-basis = Does not need your consent

## What a change did

action-grant = Agreed
action-deny = Declined
action-withdraw = Withdrew
action-object = Objected
action-restrict = Restricted
action-renew = Renewed
action-locate = Your place set
action-expire = Expired

## Legal bases

basis-consent = Your consent
basis-contract = Needed to provide what you asked for (contract)
basis-legitimate-interest = Our legitimate interest (you may object)
basis-legal-obligation = Required by law
basis-vital-interest = To protect someone's life or health
basis-public-task = A task in the public interest

## Dates and times, always in UTC

date-time = { $day } { $month ->
        [1] Jan
        [2] Feb
        [3] Mar
        [4] Apr
        [5] May
        [6] Jun
        [7] Jul
        [8] Aug
        [9] Sep
        [10] Oct
        [11] Nov
       *[12] Dec
    } { $year }, { $time } UTC

## Objecting, and what a receipt or a download is for (read by screen readers)
object = Object
object-named = Object to { $purpose }
object-help = You may object to this at any time; we then stop unless we have compelling legitimate grounds.
receipt-of = the receipt for { $what }
