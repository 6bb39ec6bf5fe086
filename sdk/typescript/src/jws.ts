// Compact JWS verification (RFC 7515) with EdDSA over Ed25519 (RFC 8037), on WebCrypto: Node >= 20 and
// current browsers verify Ed25519 themselves, so no JOSE library is needed. Written from the RFCs, not
// from Consentry's Rust code, so that a receipt checked here is checked by a second implementation.
//
// Accepted: `alg` `EdDSA` only, a `kid` that names an Ed25519 key (`kty` `OKP`, `crv` `Ed25519`) of the
// key set, no `crit` header, and the `typ` the caller expects.

/** A public JSON Web Key as Consentry publishes them. */
export interface Jwk {
  kty: string;
  crv?: string;
  x?: string;
  kid?: string;
  alg?: string;
  use?: string;
}

/** A JSON Web Key Set (`/.well-known/jwks.json`). */
export interface Jwks {
  keys: Jwk[];
}

/** Why a signed statement was refused; `code` is stable, the message says more. */
export type VerificationCode =
  | "malformed"
  | "wrong_alg"
  | "unknown_kid"
  | "unusable_key"
  | "bad_signature"
  | "wrong_kind"
  | "not_a_receipt"
  | "unsupported_schema"
  | "bad_proof";

export class VerificationError extends Error {
  override readonly name = "VerificationError";
  constructor(
    readonly code: VerificationCode,
    message: string,
  ) {
    super(message);
  }
}

/** A verified JWS: its protected header and payload bytes. */
export interface VerifiedJws {
  header: { alg: string; kid: string; typ?: string };
  payload: Uint8Array;
}

/**
 * Verifies a compact JWS against `jwks`. `kinds` lists the `typ` values accepted (compared as media types:
 * without regard to case, with or without `application/`); `undefined` in it accepts a JWS with no `typ`.
 */
export async function verifyJws(
  jws: string,
  jwks: Jwks,
  kinds: readonly (string | undefined)[],
): Promise<VerifiedJws> {
  const parts = jws.split(".");
  if (parts.length !== 3) throw new VerificationError("malformed", "expected three dot-separated parts");
  const [headerB64, payloadB64, signatureB64] = parts as [string, string, string];
  const header = parseHeader(headerB64);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (jwk === undefined) throw new VerificationError("unknown_kid", `no key with kid ${clip(header.kid)}`);
  const key = await importEd25519(jwk);
  const signature = decodeBase64Url(signatureB64, "signature");
  if (signature.length !== 64) throw new VerificationError("malformed", "the signature is not 64 bytes");
  const signingInput = new TextEncoder().encode(`${headerB64}.${payloadB64}`);
  const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, signature, signingInput);
  if (!ok) throw new VerificationError("bad_signature", "the JWS signature does not verify");
  if (!kinds.some((kind) => sameType(kind, header.typ))) {
    throw new VerificationError("wrong_kind", `a JWS of typ ${clip(header.typ ?? "(none)")} is not of this kind`);
  }
  return { header, payload: decodeBase64Url(payloadB64, "payload") };
}

function parseHeader(b64: string): VerifiedJws["header"] {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(decodeBase64Url(b64, "header")));
  } catch (e) {
    if (e instanceof VerificationError) throw e;
    throw new VerificationError("malformed", "the header is not JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new VerificationError("malformed", "the header is not a JSON object");
  }
  const h = header as Record<string, unknown>;
  if (typeof h.alg !== "string") throw new VerificationError("malformed", "the header has no alg");
  if (h.alg !== "EdDSA") throw new VerificationError("wrong_alg", `alg ${clip(h.alg)} is not EdDSA`);
  // RFC 7515 §4.1.11: a recipient that does not understand a critical extension must refuse the JWS.
  if ("crit" in h) throw new VerificationError("malformed", "crit header parameters are not supported");
  if (typeof h.kid !== "string") throw new VerificationError("malformed", "the header has no kid");
  if (h.typ !== undefined && typeof h.typ !== "string") throw new VerificationError("malformed", "typ is not a string");
  return typeof h.typ === "string" ? { alg: h.alg, kid: h.kid, typ: h.typ } : { alg: h.alg, kid: h.kid };
}

function sameType(expected: string | undefined, found: string | undefined): boolean {
  if (expected === undefined || found === undefined) return expected === found;
  const bare = (t: string) => t.toLowerCase().replace(/^application\//, "");
  return bare(expected) === bare(found);
}

/** The Ed25519 public key of `jwk`, for verifying; refuses any other kind of key. */
export async function importEd25519(jwk: Jwk): Promise<CryptoKey> {
  const usable =
    jwk.kty === "OKP" &&
    jwk.crv === "Ed25519" &&
    (jwk.alg === undefined || jwk.alg === "" || jwk.alg === "EdDSA") &&
    (jwk.use === undefined || jwk.use === "" || jwk.use === "sig") &&
    typeof jwk.x === "string";
  if (!usable) throw new VerificationError("unusable_key", `the key ${clip(jwk.kid ?? "")} is not an Ed25519 key`);
  const raw = decodeBase64Url(jwk.x as string, "key");
  if (raw.length !== 32) throw new VerificationError("unusable_key", "the key is not 32 bytes");
  return crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64url without padding (RFC 7515 §2): anything else is refused, not repaired. */
export function decodeBase64Url(text: string, what: string): Uint8Array<ArrayBuffer> {
  if (!BASE64URL.test(text) || text.length % 4 === 1) {
    throw new VerificationError("malformed", `the ${what} is not base64url`);
  }
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - (text.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Standard base64 (RFC 4648 §4), padded, as C2SP signed notes and Standard Webhooks write it. */
export function decodeBase64(text: string, what: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new VerificationError("malformed", `the ${what} is not base64`);
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** At most 64 characters of untrusted text, for messages. */
function clip(text: string): string {
  return JSON.stringify(text.slice(0, 64));
}
