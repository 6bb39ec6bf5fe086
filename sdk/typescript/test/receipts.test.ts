// Receipts verify with the server's published keys, by this package's own code: a receipt that proves
// itself (its events' inclusion proofs against the log's signed checkpoint) and the same receipt as a JWS.
// A receipt changed in any way, signed by another key, or another kind of signed statement is refused.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, test } from "node:test";

import {
  ConsentryClient,
  type ProvenReceipt,
  VerificationError,
  verifyCheckpointConsistency,
  verifyProvenReceipt,
  verifyReceipt,
} from "../src/index.js";
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

test("a receipt proves itself, and verifies as a JWS", { skip }, async () => {
  const c = admin();
  const recorded = await c.recordConsents("alice", {
    notice: "marketing.direct",
    collection_point: "web-signup",
    changes: [
      { purpose: "marketing.direct", action: "grant", channels: ["email"], categories: ["user.contact.email"] },
      { purpose: "marketing.direct", action: "grant", channels: ["sms"], categories: ["user.contact.phone"] },
    ],
  });
  const vkeys = await c.tlogVerifierKeys();
  const proven = await verifyProvenReceipt(recorded.receipt, vkeys);
  assert.equal(proven.receipt.version, "KI-CR-v1.1.0");
  assert.equal(proven.receipt.consentReceiptID, recorded.receipt.id);
  assert.equal(proven.receipt.piiPrincipalId, "alice");
  assert.deepEqual(proven.seqs, recorded.events.map((e) => e.seq), "both events, the second as other_leaves");
  assert.ok(proven.checkpoint.size >= BigInt(recorded.events.at(-1)!.seq));

  // Read again later: proven against the newest checkpoint, which is consistent with the first.
  await c.recordConsents("bob", { notice: "analytics", changes: [{ purpose: "analytics", action: "grant" }] });
  const again = await c.receipt(recorded.receipt.id);
  const later = await verifyProvenReceipt(again, vkeys);
  assert.deepEqual(later.seqs, proven.seqs);
  const newest = await c.tlogCheckpoint();
  const proof = await c.tlogConsistency(proven.checkpoint.size, later.checkpoint.size);
  const grown = await verifyCheckpointConsistency(recorded.receipt.checkpoint, again.checkpoint, proof, vkeys);
  assert.ok(grown.newer.size > grown.older.size, "the log grew");
  assert.ok((await verifyCheckpointConsistency(again.checkpoint, newest, await c.tlogConsistency(later.checkpoint.size, later.checkpoint.size), vkeys)).older);

  // The same receipt as a JWS, signed on demand, checked with the JWKS.
  const jwks = await c.jwks();
  const signed = await c.receiptJws(recorded.receipt.id);
  const receipt = await verifyReceipt(signed.jws, jwks);
  assert.deepEqual(receipt, recorded.receipt.payload, "the JWS signs the proven receipt's document");
  assert.deepEqual(receipt.consentry.events.map((e) => [e.event_id, e.purpose_id, e.event_state]), [
    [recorded.events[0]!.id, "marketing.direct", "given"],
    [recorded.events[1]!.id, "marketing.direct", "given"],
  ]);
  assert.equal(receipt.consentry.kid, jwks.keys[0]!.kid);
});

test("a changed proven receipt is refused", { skip }, async () => {
  const c = admin();
  const recorded = await c.recordConsents("mallory", { changes: [{ purpose: "analytics", action: "deny" }] });
  const vkeys = await c.tlogVerifierKeys();
  const good = recorded.receipt as ProvenReceipt;
  await verifyProvenReceipt(good, vkeys);
  const changed = (f: (r: any) => void): ProvenReceipt => {
    const copy = structuredClone(good) as any;
    f(copy);
    return copy;
  };
  const cases: [string, ProvenReceipt][] = [
    ["the denial turned into a grant", changed((r) => (r.payload.consentry.events[0].event_type = "grant"))],
    ["another person named", changed((r) => (r.payload.piiPrincipalId = "alice"))],
    ["another event as the leaf", changed((r) => (r.leaf.data = Buffer.from("{}").toString("base64")))],
    ["another place", changed((r) => (r.leaf.index += 1))],
    ["a proof hash changed", changed((r) => (r.inclusion_proof = r.inclusion_proof.length ? [Buffer.alloc(32).toString("base64"), ...r.inclusion_proof.slice(1)] : [Buffer.alloc(32).toString("base64")]))],
    ["another root", changed((r) => (r.checkpoint = r.checkpoint.replace(/\n([A-Za-z0-9+/]{43}=)\n/, `\n${Buffer.alloc(32).toString("base64")}\n`)))],
    ["another subject key", changed((r) => (r.subject_key = Buffer.alloc(32, 1).toString("base64")))],
  ];
  for (const [what, receipt] of cases) {
    await assert.rejects(verifyProvenReceipt(receipt, vkeys), (e: unknown) => e instanceof VerificationError, what);
  }
  // Verified with another key of the log's name: the checkpoint carries no signature by it.
  const name = vkeys.split("+")[0]!;
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const other = Buffer.concat([Buffer.of(1), Buffer.from(await crypto.subtle.exportKey("raw", pair.publicKey))]);
  const id = createHash("sha256").update(`${name}\n`).update(other).digest().subarray(0, 4).toString("hex");
  await assert.rejects(verifyProvenReceipt(good, `${name}+${id}+${other.toString("base64")}`), /no signature by a known key/);
});

test("a tampered or foreign JWS receipt is refused", { skip }, async () => {
  const c = admin();
  const recorded = await c.recordConsents("mallory", {
    notice: "analytics",
    changes: [{ purpose: "analytics", action: "deny" }],
  });
  const jwks = await c.jwks();
  const jws = (await c.receiptJws(recorded.receipt.id)).jws;
  const [header, payload, signature] = parts(jws);
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
  await refused(jws, { keys: [] }, "unknown_kid");
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
