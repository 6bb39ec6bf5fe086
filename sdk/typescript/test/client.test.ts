// The client against a real server: the check path (single and batch), the write path (consents, history,
// subject tokens, requests, destinations) and errors as typed problems.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { ConsentryClient, ConsentryProblem } from "../src/index.js";
import { ADMIN_KEY, startServer } from "./server.js";

const server = await startServer();
after(() => server?.stop());
const skip = server === undefined;
const admin = () => new ConsentryClient({ baseUrl: server!.base, token: ADMIN_KEY, purpose: "sdk tests" });

test("a grant is recorded, checked, and withdrawn", { skip }, async () => {
  const c = admin();
  const recorded = await c.recordConsents("user-42", {
    notice: "marketing.direct",
    collection_point: "web-signup",
    changes: [{ purpose: "marketing.direct", action: "grant", channels: ["email"], categories: ["user.contact.email"] }],
  });
  assert.equal(recorded.events.length, 1);
  const grant = recorded.events[0]!;
  assert.equal(grant.action, "grant");
  assert.match(recorded.receipt.id, /^rcpt_/);

  const email = { subject: "user-42", purpose: "marketing.direct", channel: "email", category: "user.contact.email" };
  assert.deepEqual(await c.check(email), { allowed: true, reason: "granted", event_id: grant.id });
  const everyCategory = await c.check({ subject: "user-42", purpose: "marketing.direct", channel: "email" });
  assert.equal(everyCategory.allowed, false);
  assert.equal(everyCategory.reason, "not_covered");
  assert.equal(everyCategory.not_covered, "category");

  const batch = await c.checkBatch([email, { ...email, channel: "sms" }, { ...email, subject: "someone-else" }]);
  assert.deepEqual(
    batch.map((d) => [d.allowed, d.reason]),
    [
      [true, "granted"],
      [false, "not_covered"],
      [false, "no_consent"],
    ],
  );

  const withdrawn = await c.recordConsents("user-42", { changes: [{ purpose: "marketing.direct", action: "withdraw" }] });
  assert.deepEqual(await c.check(email), { allowed: false, reason: "withdrawn", event_id: withdrawn.events[0]!.id });

  const first = await c.history("user-42", { limit: 1 });
  assert.deepEqual(first.events.map((e) => e.id), [grant.id]);
  assert.ok(first.next, "a second page");
  const second = await c.history("user-42", { limit: 1, after: first.next! });
  assert.deepEqual(second.events.map((e) => e.action), ["withdraw"]);
  const current = await c.consents("user-42");
  assert.equal(current.subject, "user-42");
});

test("errors are typed RFC 9457 problems with a code", { skip }, async () => {
  const c = admin();
  const unknown = await c.check({ subject: "user-1", purpose: "no.such.purpose" }).catch((e: unknown) => e);
  assert.ok(unknown instanceof ConsentryProblem, String(unknown));
  assert.equal(unknown.status, 422);
  assert.equal(unknown.code, "unknown_purpose");
  assert.match(unknown.type, /^urn:consentry:problem:/);
  assert.ok(unknown.detail.length > 0);

  const anonymous = new ConsentryClient({ baseUrl: server!.base });
  const denied = await anonymous.check({ subject: "user-1", purpose: "analytics" }).catch((e: unknown) => e);
  assert.ok(denied instanceof ConsentryProblem);
  assert.equal(denied.status, 401);
  assert.equal(denied.code, "unauthorized");

  const invalid = await c
    .recordConsents("user-1", { changes: [{ purpose: "analytics", action: "grant", channels: ["pigeon"] }] })
    .catch((e: unknown) => e);
  assert.ok(invalid instanceof ConsentryProblem);
  assert.equal(invalid.status, 422);
  assert.equal(invalid.code, "unknown_channel");

  const missing = await c.receipt("rcpt_00000000000000000000000000000000").catch((e: unknown) => e);
  assert.ok(missing instanceof ConsentryProblem);
  assert.equal(missing.code, "not_found");
});

test("a subject token acts for its own subject only", { skip }, async () => {
  const c = admin();
  await c.recordConsents("ann", { notice: "analytics", changes: [{ purpose: "analytics", action: "grant" }] });
  const minted = await c.mintSubjectToken("ann", { ttl: 600, locale: "de" });
  assert.ok(minted.token.length > 20);
  assert.ok(minted.url.startsWith(server!.base));
  const ann = new ConsentryClient({ baseUrl: server!.base, token: minted.token });
  const history = await ann.history("ann");
  assert.deepEqual(history.events.map((e) => e.purpose), ["analytics"]);
  const other = await ann.history("bob").catch((e: unknown) => e);
  assert.ok(other instanceof ConsentryProblem);
  assert.equal(other.status, 403);
});

test("data subject requests and destinations", { skip }, async () => {
  const c = admin();
  const destination = await c.destinations.create({
    name: "crm",
    kind: "webhook",
    url: "https://crm.example/hooks/consent",
    event_types: ["request.*"],
  });
  assert.match(destination.secret ?? "", /^whsec_/);
  assert.deepEqual((await c.destinations.list()).map((d) => d.id), [destination.id]);

  const request = await c.requests.create({ subject: "user-7", type: "access" });
  assert.equal(request.type, "access");
  assert.deepEqual((await c.requests.list({ subject: "user-7" })).requests.map((r) => r.id), [request.id]);
  const got = await c.requests.get(request.id);
  assert.deepEqual(got.tasks?.map((t) => t.destination_id), [destination.id]);
  const done = await c.requests.completeTask(request.id, destination.id, { note: "nothing held" });
  assert.equal(done.tasks?.[0]?.status, "completed");

  const paused = await c.destinations.update(destination.id, { paused: true });
  assert.equal(paused.paused, true);
  assert.equal((await c.destinations.get(destination.id)).secret ?? null, null, "the secret is shown only once");

  await c.destinations.delete(destination.id);
  const gone = await c.destinations.get(destination.id).catch((e: unknown) => e);
  assert.ok(gone instanceof ConsentryProblem);
  assert.equal(gone.status, 404);
});
