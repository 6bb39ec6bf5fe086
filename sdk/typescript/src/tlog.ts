// The ledger as a transparency log, checked on WebCrypto: RFC 9162 §2.1 Merkle tree hashes, inclusion and
// consistency proofs, C2SP signed notes (Ed25519) and tlog checkpoints, and the receipts that prove
// themselves with them. Written from those texts, not from Consentry's Rust code.

import { decodeBase64, VerificationError } from "./jws.js";
import { type ConsentReceipt, RECEIPT_SCHEMA_VERSION, RECEIPT_VERSION, isReceipt } from "./receipts.js";

/** A log's verifier key, parsed from its C2SP form `<name>+<hex key id>+<base64(0x01 ‖ key)>`. */
export interface VerifierKey {
  name: string;
  id: Uint8Array;
  key: CryptoKey;
}

/** An opened checkpoint: the log's origin, its tree size and root. */
export interface Checkpoint {
  origin: string;
  size: bigint;
  root: Uint8Array;
  /** The name of the key whose signature verified. */
  signer: string;
}

/** A ledger event as a leaf of the tree: index `seq − 1`, its canonical bytes in base64. */
export interface Leaf {
  index: number;
  data: string;
}

/** A receipt that proves itself (the `receipt` of a consent write's 201, and `GET /v1/receipts/{id}`). */
export interface ProvenReceipt {
  id: string;
  subject?: string;
  created_at?: string;
  /** The receipt document; checked to be a ConsentReceipt when verified. */
  payload: object;
  leaf: Leaf;
  inclusion_proof: string[];
  other_leaves?: (Leaf & { inclusion_proof: string[] })[];
  checkpoint: string;
  subject_key: string;
}

/** What a proven receipt showed: its document, the checkpoint it is proven against, the events' places. */
export interface VerifiedReceipt {
  receipt: ConsentReceipt;
  checkpoint: Checkpoint;
  seqs: number[];
}

const encoder = new TextEncoder();

function refuse(message: string): never {
  throw new VerificationError("bad_proof", message);
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

/** RFC 9162 §2.1.1: the hash of a leaf, SHA-256(0x00 ‖ data). */
export function leafHash(data: Uint8Array): Promise<Uint8Array> {
  return sha256(Uint8Array.of(0), data);
}

/** RFC 9162 §2.1.1: the hash of an inner node, SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return sha256(Uint8Array.of(1), left, right);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof of leaf `index` in a tree of `size` leads to. */
export async function rootFromInclusion(
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<Uint8Array> {
  if (index < 0n || index >= size) refuse("the leaf index is not below the tree size");
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) refuse("the inclusion proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) refuse("the inclusion proof is too short");
  return r;
}

/** RFC 9162 §2.1.4.2: throws unless `proof` shows the tree of `first` leaves is a prefix of the one of `second`. */
export async function verifyConsistency(
  first: bigint,
  second: bigint,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<void> {
  if (first > second) refuse("the first tree is larger than the second");
  if (first === second) {
    if (proof.length > 0 || !equal(firstRoot, secondRoot)) refuse("equal sizes need equal roots and an empty proof");
    return;
  }
  if (first === 0n) {
    if (proof.length > 0) refuse("a proof from the empty tree must be empty");
    return;
  }
  if (proof.length === 0) refuse("the consistency proof is empty");
  const path = (first & (first - 1n)) === 0n ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  for (const c of path.slice(1)) {
    if (sn === 0n) refuse("the consistency proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) refuse("the consistency proof is too short");
  if (!equal(fr, firstRoot) || !equal(sr, secondRoot)) refuse("the consistency proof does not match the roots");
}

/** Parses the verifier keys of `GET /v1/tlog/vkey` (one per line); the key id must be the key's. */
export async function parseVerifierKeys(text: string): Promise<VerifierKey[]> {
  const keys: VerifierKey[] = [];
  for (const line of text.split("\n").filter((l) => l.trim() !== "")) {
    // The key's base64 may hold '+' itself: the name and the id end at the first two.
    const [name, id, ...rest] = line.trim().split("+");
    const key = rest.join("+");
    if (name === undefined || id === undefined || rest.length === 0 || name === "") {
      throw new VerificationError("unusable_key", "a verifier key is not <name>+<id>+<key>");
    }
    const raw = decodeBase64(key, "verifier key");
    if (raw.length !== 33 || raw[0] !== 0x01) throw new VerificationError("unusable_key", "not an Ed25519 verifier key");
    const expected = (await sha256(encoder.encode(`${name}\n`), raw)).slice(0, 4);
    if (!/^[0-9a-f]{8}$/.test(id) || hex(expected) !== id) {
      throw new VerificationError("unusable_key", "a verifier key's id is not its key's");
    }
    const publicKey = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
    keys.push({ name, id: expected, key: publicKey });
  }
  return keys;
}

/**
 * Opens a C2SP signed note: returns its text and the name of the key that signed it, once a signature by
 * one of `keys` verifies. Signatures by keys not given (a witness's cosignature) are skipped; a signature
 * by a given key that does not verify refuses the note.
 */
export async function openNote(note: string, keys: readonly VerifierKey[]): Promise<{ text: string; signer: string }> {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) refuse("not a signed note");
  const text = note.slice(0, split + 1);
  const signed = encoder.encode(text);
  let signer: string | undefined;
  for (const line of note.slice(split + 2, -1).split("\n")) {
    if (!line.startsWith("\u2014 ")) refuse("a malformed signature line");
    const [name, blob, extra] = line.slice(2).split(" ");
    if (name === undefined || blob === undefined || extra !== undefined) refuse("a malformed signature line");
    const bytes = decodeBase64(blob, "note signature");
    for (const k of keys) {
      if (k.name !== name || bytes.length < 4 || !equal(k.id, bytes.slice(0, 4))) continue;
      const ok = await crypto.subtle.verify({ name: "Ed25519" }, k.key, bytes.slice(4), signed);
      if (!ok) refuse("a signature by a known key does not verify");
      signer ??= name;
    }
  }
  if (signer === undefined) refuse("the note carries no signature by a known key");
  return { text, signer };
}

/**
 * Opens a C2SP tlog checkpoint: `<origin>\n<size>\n<base64 root>\n[extension lines]`, signed. Its origin
 * must be `origin` when given, else the name of the key that signed it (the C2SP convention).
 */
export async function openCheckpoint(note: string, keys: readonly VerifierKey[], origin?: string): Promise<Checkpoint> {
  const { text, signer } = await openNote(note, keys);
  const lines = text.split("\n");
  const [first, size, root] = lines;
  if (lines.length < 4 || first === undefined || first !== (origin ?? signer)) refuse("not a checkpoint of this log");
  if (size === undefined || !/^(0|[1-9][0-9]*)$/.test(size)) refuse("a malformed tree size");
  const rootBytes = decodeBase64(root ?? "", "root");
  if (rootBytes.length !== 32) refuse("a malformed root");
  return { origin: first, size: BigInt(size), root: rootBytes, signer };
}

/**
 * Verifies a receipt that proves itself, with the log's verifier keys only (`GET /v1/tlog/vkey`): the
 * checkpoint's signature and origin, each leaf's inclusion proof against its root, that each leaf is the
 * event the receipt names (its SHA-256 is the event's `hash`, its place the event's `seq`, its purpose and
 * action those named), and that each event's pseudonym is HMAC-SHA256 of the receipt's subject under the
 * opened key. Throws VerificationError (`bad_proof`, `unusable_key`, `malformed`).
 */
export async function verifyProvenReceipt(
  proven: ProvenReceipt,
  verifierKeys: string | readonly VerifierKey[],
  options: { origin?: string } = {},
): Promise<VerifiedReceipt> {
  const keys = typeof verifierKeys === "string" ? await parseVerifierKeys(verifierKeys) : verifierKeys;
  const checkpoint = await openCheckpoint(proven.checkpoint, keys, options.origin);
  const payload: unknown = proven.payload;
  if (!isReceipt(payload)) throw new VerificationError("not_a_receipt", "the payload is not a consent receipt");
  const named = payload.consentry.events;
  if (payload.version !== RECEIPT_VERSION || payload.consentry.schema_version !== RECEIPT_SCHEMA_VERSION) {
    throw new VerificationError("unsupported_schema", `unsupported receipt schema (expected ${RECEIPT_VERSION})`);
  }
  const leaves = [{ ...proven.leaf, inclusion_proof: proven.inclusion_proof }, ...(proven.other_leaves ?? [])];
  if (leaves.length !== named.length) refuse("the receipt names another number of events than it proves");
  const hmacKey = await crypto.subtle.importKey(
    "raw",
    decodeBase64(proven.subject_key, "subject key"),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const pseudonym = hex(new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, encoder.encode(payload.piiPrincipalId))));
  const seqs: number[] = [];
  for (const [i, leaf] of leaves.entries()) {
    const claim = named[i]!;
    const data = decodeBase64(leaf.data, "leaf");
    const proof = leaf.inclusion_proof.map((h) => decodeBase64(h, "proof hash"));
    const root = await rootFromInclusion(BigInt(leaf.index), checkpoint.size, await leafHash(data), proof);
    if (!equal(root, checkpoint.root)) refuse("an inclusion proof does not lead to the checkpoint's root");
    if (hex(await sha256(data)) !== claim.hash) refuse("a leaf is not the event the receipt names");
    let event: { seq?: unknown; purpose?: unknown; action?: unknown; subject?: unknown };
    try {
      event = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
    } catch {
      refuse("a leaf is not an event");
    }
    if (event.seq !== claim.seq || event.seq !== leaf.index + 1) refuse("a leaf is not at the event's place in the ledger");
    if (event.purpose !== claim.purpose_id || event.action !== claim.event_type) {
      refuse("a leaf records another change than the receipt says");
    }
    if (event.subject !== pseudonym) refuse("the events are not about the receipt's subject");
    seqs.push(claim.seq);
  }
  return { receipt: payload, checkpoint, seqs };
}

/**
 * Checks that the log only grew between two of its signed checkpoints (`older` and `newer`, signed notes),
 * with the proof `GET /v1/tlog/consistency?from=<older size>&to=<newer size>` gives: a log that dropped
 * or changed an event cannot give one. Returns both checkpoints.
 */
export async function verifyCheckpointConsistency(
  older: string,
  newer: string,
  proof: { hashes: readonly string[] },
  verifierKeys: string | readonly VerifierKey[],
  options: { origin?: string } = {},
): Promise<{ older: Checkpoint; newer: Checkpoint }> {
  const keys = typeof verifierKeys === "string" ? await parseVerifierKeys(verifierKeys) : verifierKeys;
  const a = await openCheckpoint(older, keys, options.origin);
  const b = await openCheckpoint(newer, keys, options.origin ?? a.origin);
  const hashes = proof.hashes.map((h) => decodeBase64(h, "proof hash"));
  await verifyConsistency(a.size, b.size, a.root, b.root, hashes);
  return { older: a, newer: b };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
