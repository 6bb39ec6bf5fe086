// The Standard Webhooks receiver: deliveries signed by the official `standardwebhooks` library verify, a
// changed body, a stale timestamp or another secret do not; and a real server's webhook is received,
// verified (by this package and by the official library), and its CloudEvent is valid for the official
// CloudEvents SDK.

import assert from "node:assert/strict";
import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";

import { CloudEvent as OfficialCloudEvent } from "cloudevents";
import { Webhook } from "standardwebhooks";

import { ConsentryClient } from "../src/index.js";
import { type ConsentEvent, WebhookVerificationError, verifyWebhook, webhookListener } from "../src/webhooks.js";
import { ADMIN_KEY, startServer } from "./server.js";

const SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
const EVENT = {
  specversion: "1.0",
  id: "evt_9",
  source: "urn:consentry:test",
  type: "consent.withdrawn",
  time: "2026-01-02T03:04:05.000001Z",
  datacontenttype: "application/json",
  subject: "user-1",
  data: { event: { id: "evt_9", purpose: "analytics" }, decision: { purpose: "analytics", overall: null, channels: [] } },
};

function signed(body: string, at = new Date(), secret = SECRET): Record<string, string> {
  const signature = new Webhook(secret).sign("evt_9", at, body);
  return {
    "webhook-id": "evt_9",
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signature,
  };
}

function refused(code: string, f: () => unknown): void {
  assert.throws(f, (e: unknown) => e instanceof WebhookVerificationError && e.code === code);
}

test("what the official library signs verifies, and nothing else", () => {
  const body = JSON.stringify(EVENT);
  const event = verifyWebhook(SECRET, signed(body), body);
  assert.equal(event.type, "consent.withdrawn");
  if (event.type === "consent.withdrawn") assert.equal(event.data.decision.purpose, "analytics");
  assert.equal(verifyWebhook(SECRET, new Headers(signed(body)), new TextEncoder().encode(body)).id, "evt_9");

  refused("bad_signature", () => verifyWebhook(SECRET, signed(body), body.replace("withdrawn", "granted")));
  const other = `whsec_${Buffer.alloc(32, 8).toString("base64")}`;
  refused("bad_signature", () => verifyWebhook(SECRET, signed(body, new Date(), other), body));
  const stale = new Date(Date.now() - 10 * 60 * 1000);
  refused("timestamp_out_of_tolerance", () => verifyWebhook(SECRET, signed(body, stale), body));
  assert.equal(verifyWebhook(SECRET, signed(body, stale), body, { toleranceSeconds: 900 }).id, "evt_9");
  const { "webhook-signature": _, ...unsigned } = signed(body);
  refused("missing_header", () => verifyWebhook(SECRET, unsigned, body));
  refused("bad_secret", () => verifyWebhook("whsec_!!", signed(body), body));
  const notEvent = JSON.stringify({ hello: "world" });
  refused("not_a_cloudevent", () => verifyWebhook(SECRET, signed(notEvent), notEvent));
  const future = JSON.stringify({ ...EVENT, type: "consent.teleported" });
  refused("unknown_type", () => verifyWebhook(SECRET, signed(future), future));
});

const server = await startServer();
after(() => server?.stop());

test("a real server's webhook is received and verified", { skip: server === undefined }, async () => {
  const c = new ConsentryClient({ baseUrl: server!.base, token: ADMIN_KEY });
  let secret = "";
  let resolveEvent: (e: ConsentEvent) => void;
  const received = new Promise<ConsentEvent>((ok) => (resolveEvent = ok));
  let resolveRaw: (r: { headers: IncomingHttpHeaders; body: string }) => void;
  const raw = new Promise<{ headers: IncomingHttpHeaders; body: string }>((ok) => (resolveRaw = ok));
  let listener: ReturnType<typeof webhookListener> | undefined;
  const receiver = createServer((req, res) => {
    if (req.url === "/raw") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        resolveRaw({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(204).end();
      });
      return;
    }
    if (listener === undefined) return void res.writeHead(503).end();
    listener(req, res);
  });
  await new Promise<void>((ok) => receiver.listen(0, "127.0.0.1", ok));
  const port = (receiver.address() as AddressInfo).port;
  try {
    const hook = await c.destinations.create({
      name: "sdk-hook",
      kind: "webhook",
      url: `http://127.0.0.1:${port}/hook`,
      event_types: ["consent.*"],
    });
    secret = hook.secret!;
    listener = webhookListener(secret, { "consent.granted": (e) => resolveEvent(e) });
    const rawHook = await c.destinations.create({
      name: "sdk-raw",
      kind: "webhook",
      url: `http://127.0.0.1:${port}/raw`,
      event_types: ["consent.granted"],
    });

    const recorded = await c.recordConsents("user-hook", {
      notice: "analytics",
      changes: [{ purpose: "analytics", action: "grant", channels: ["on_device"] }],
    });
    const event = await within(20_000, received);
    assert.equal(event.type, "consent.granted");
    assert.equal(event.subject, "user-hook");
    assert.equal(event.id, recorded.events[0]!.id);
    assert.equal(event.data.event.purpose, "analytics");
    assert.deepEqual(event.data.event.channels, ["on_device"]);
    const onDevice = event.data.decision.channels.find((d) => d.channel === "on_device");
    assert.deepEqual([onDevice?.allowed, onDevice?.reason], [true, "granted"]);
    // The server records the delivery once the 204 is back.
    for (let i = 0; ; i++) {
      const status = (await c.destinations.deliveries(hook.id)).deliveries[0]?.status;
      if (status === "delivered") break;
      assert.ok(i < 100, `the delivery is still ${status}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    // The same delivery, checked by the official libraries.
    const { headers, body } = await within(20_000, raw);
    const flat = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)]));
    new Webhook(rawHook.secret!).verify(body, flat);
    const mine = verifyWebhook(rawHook.secret!, headers, body);
    assert.equal(mine.id, event.id);
    const official = new OfficialCloudEvent(JSON.parse(body), true);
    assert.equal(official.validate(), true);
    assert.equal(official.type, "consent.granted");
    assert.equal(official.subject, "user-hook");
    refused("bad_signature", () => verifyWebhook(secret, headers, body));
  } finally {
    receiver.closeAllConnections();
    await new Promise((ok) => receiver.close(ok));
  }
});

function within<T>(ms: number, p: Promise<T>): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, fail) => setTimeout(() => fail(new Error(`nothing within ${ms} ms`)), ms).unref()),
  ]);
}
