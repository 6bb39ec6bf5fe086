// Receipts verify with the server's published keys, by this package's own JWS code; a receipt changed in
// any way, signed by another key, or another kind of signed statement is refused.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { ConsentryClient, VerificationError, verifyReceipt } from "../src/index.js";
import type { Jwks } from "../src/index.js";
import { ADMIN_KEY, startServer } from "./server.js";

const server = await startServer();
after(() => server?.stop());
const skip = server === undefined;
const admin = () => new ConsentryClient({ baseUrl: server!.base, token: ADMIN_KEY });

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");
const json64 = (value: unknown) => b64url(new TextEncoder().encode(JSON.stringify(value)));
const parts = (jws: string) => jws.split(".") as [string, string, string];

async function refused(jws: string, jwks: Jwks, code: string): Promise<void> {
  await assert.rejects(verifyReceipt(jws, jwks), (e: unknown) => {
    assert.ok(e instanceof VerificationError, String(e));
    assert.equal(e.code, code, e.message);
    return true;
  });
}

test("a receipt verifies with the published keys", { skip }, async () => {
  const c = admin();
  const recorded = await c.recordConsents("alice", {
    notice: "marketing.direct",
    collection_point: "web-signup",
    changes: [{ purpose: "marketing.direct", action: "grant", channels: ["email"], categories: ["user.contact.email"] }],
  });
  const jwks = await c.jwks();
  // The write answers with the document and its proof of inclusion; the JWS is signed when asked for.
  assert.equal(recorded.receipt.leaf.index, recorded.events[0]!.seq - 1);
  const signed = await c.receiptJws(recorded.receipt.id);
  const receipt = await verifyReceipt(signed.jws, jwks);
  assert.deepEqual(receipt, recorded.receipt.payload);
  assert.equal(receipt.version, "KI-CR-v1.1.0");
  assert.equal(receipt.consentReceiptID, recorded.receipt.id);
  assert.equal(receipt.piiPrincipalId, "alice");
  assert.deepEqual(receipt.consentry.events.map((e) => [e.event_id, e.purpose_id, e.event_state]), [
    [recorded.events[0]!.id, "marketing.direct", "given"],
  ]);
  assert.equal(receipt.consentry.kid, jwks.keys[0]!.kid);

  // Fetched again later, it is the same document with a proof against the newest checkpoint.
  const fetched = await c.receipt(recorded.receipt.id);
  assert.deepEqual(fetched.payload, recorded.receipt.payload);
  assert.match(fetched.checkpoint, /^[^\n]+\n\d+\n[A-Za-z0-9+/=]{44}\n\n\u2014 /);
});

test("a tampered or foreign receipt is refused", { skip }, async () => {
  const c = admin();
  const recorded = await c.recordConsents("mallory", {
    notice: "analytics",
    changes: [{ purpose: "analytics", action: "deny" }],
  });
  const jwks = await c.jwks();
  const signed = (await c.receiptJws(recorded.receipt.id)).jws;
  const [header, payload, signature] = parts(signed);
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));

  // The person's denial turned into a grant, the signature kept.
  claims.consentry.events[0].event_type = "grant";
  claims.consentry.events[0].event_state = "given";
  await refused(`${header}.${json64(claims)}.${signature}`, jwks, "bad_signature");
  // One bit of the signature flipped.
  const sig = Buffer.from(signature, "base64url");
  sig[10]! ^= 1;
  await refused(`${header}.${payload}.${b64url(sig)}`, jwks, "bad_signature");
  // alg "none", and a key set that does not hold the key.
  const none = json64({ alg: "none", kid: jwks.keys[0]!.kid, typ: "consent-receipt+jwt" });
  await refused(`${none}.${payload}.`, jwks, "wrong_alg");
  await refused(signed, { keys: [] }, "unknown_kid");
  await refused(`${header}.${payload}`, jwks, "malformed");

  // An attacker's own Ed25519 key, published under the server's kid: the signature does not hold.
  const attacker = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const forgedInput = `${header}.${json64(claims)}`;
  const forged = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, attacker.privateKey, new TextEncoder().encode(forgedInput)));
  await refused(`${forgedInput}.${b64url(forged)}`, jwks, "bad_signature");
  // The same forgery verifies against the attacker's key: the check above is the key's, not the format's.
  const attackerJwk = await crypto.subtle.exportKey("jwk", attacker.publicKey);
  const attackerSet = { keys: [{ kty: "OKP", crv: "Ed25519", x: attackerJwk.x!, kid: jwks.keys[0]!.kid }] };
  assert.equal((await verifyReceipt(`${forgedInput}.${b64url(forged)}`, attackerSet)).piiPrincipalId, "mallory");
});

test("a device snapshot is not a receipt", { skip }, async () => {
  const c = admin();
  const paired = await c.pairDevice("dora", {
    name: "Kitchen speaker",
    kind: "speaker",
    categories: ["user.device.telemetry"],
    purposes: ["analytics"],
  });
  const device = new ConsentryClient({ baseUrl: server!.base, token: paired.token });
  const snapshot = await device.deviceSnapshot();
  await refused(snapshot, await c.jwks(), "wrong_kind");
});
