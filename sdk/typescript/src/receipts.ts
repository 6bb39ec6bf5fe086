// Consent receipts, verified offline with the server's published keys: a compact JWS (`typ`
// `consent-receipt+jwt`) whose payload is a Kantara Consent Receipt v1.1 with Consentry's evidence in the
// `consentry` member (docs/receipts.md in the Consentry repository describes every member).

import { type Jwks, VerificationError, verifyJws } from "./jws.js";

/** `version` of every receipt: Kantara Consent Receipt Specification v1.1.0. */
export const RECEIPT_VERSION = "KI-CR-v1.1.0";
/** `consentry.schema_version` of the receipts this version reads. */
export const RECEIPT_SCHEMA_VERSION = "consentry-receipt/2";
/** The JWS `typ` of a receipt. Receipts signed before kinds existed have `JWT` or none, and still verify. */
export const RECEIPT_TYP = "consent-receipt+jwt";

export interface PostalAddress {
  streetAddress: string;
  postalCode?: string;
  addressLocality?: string;
  addressRegion?: string;
  /** ISO 3166-1 alpha-2. */
  addressCountry: string;
}

export interface PiiController {
  piiController: string;
  onBehalf: boolean;
  contact: string;
  address: PostalAddress;
  email: string;
  phone: string;
  piiControllerUrl?: string;
}

export interface ServicePurpose {
  purpose: string;
  purposeCategory: string[];
  /** `EXPLICIT` on consent, `N/A` on another legal basis. */
  consentType: string;
  piiCategory: string[];
  primaryPurpose: boolean;
  termination: string;
  thirdPartyDisclosure: boolean;
  thirdPartyName?: string;
}

export interface ReceiptEvent {
  event_id: string;
  event_time: string;
  /** `grant`, `deny`, `withdraw`, `object`, `restrict`, `renew` or `expire`. */
  event_type: string;
  /** `given`, `refused`, `withdrawn`, `objected`, `restricted`, `renewed` or `expired`. */
  event_state: string;
  purpose_id: string;
  dpv?: string;
  lawful_basis: string;
  pii_information: { key: string; dpv?: string; sensitive: boolean }[];
  channels: string[];
  recipients: { key: string; name: string; kind: string }[];
  expires_at?: string;
  seq: number;
  hash: string;
  prev_hash: string;
}

/** Consentry's evidence, the receipt's one extension member. */
export interface ReceiptExtension {
  schema_version: string;
  kid: string;
  issued_at: string;
  consent_time: string;
  collection_point?: { key: string; name: string };
  notice?: {
    notice_id: string;
    version: number;
    sha256: string;
    language: string;
    title: string;
    url?: string;
  };
  ledger: { first_seq: number; last_seq: number; head: string };
  events: ReceiptEvent[];
}

/** A Kantara Consent Receipt v1.1 as Consentry issues it. */
export interface ConsentReceipt {
  version: string;
  jurisdiction: string;
  /** Seconds since the Unix epoch. */
  consentTimestamp: number;
  collectionMethod: string;
  consentReceiptID: string;
  publicKey?: string;
  language?: string;
  piiPrincipalId: string;
  piiControllers: PiiController[];
  policyUrl: string;
  services: { service: string; purposes: ServicePurpose[] }[];
  sensitive: boolean;
  spiCat: string[];
  consentry: ReceiptExtension;
}

/**
 * Verifies a receipt JWS against the server's key set and returns the receipt. Throws VerificationError:
 * `bad_signature` for a receipt changed after signing, `unknown_kid` for a key not in the set,
 * `wrong_kind` for another kind of signed statement (a device snapshot, a checkpoint), `not_a_receipt` or
 * `unsupported_schema` for a payload of another form.
 */
export async function verifyReceipt(jws: string, jwks: Jwks): Promise<ConsentReceipt> {
  const { payload } = await verifyJws(jws, jwks, [RECEIPT_TYP, "JWT", undefined]);
  let receipt: unknown;
  try {
    receipt = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    throw new VerificationError("not_a_receipt", "the signed payload is not JSON");
  }
  if (!isReceipt(receipt)) throw new VerificationError("not_a_receipt", "the signed payload is not a consent receipt");
  if (receipt.version !== RECEIPT_VERSION || receipt.consentry.schema_version !== RECEIPT_SCHEMA_VERSION) {
    throw new VerificationError(
      "unsupported_schema",
      `unsupported receipt schema (expected ${RECEIPT_VERSION} with ${RECEIPT_SCHEMA_VERSION})`,
    );
  }
  return receipt;
}

/** Whether `value` has the members of a consent receipt this package reads. */
export function isReceipt(value: unknown): value is ConsentReceipt {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  const ext = r.consentry as Record<string, unknown> | undefined;
  return (
    typeof r.version === "string" &&
    typeof r.consentReceiptID === "string" &&
    typeof r.piiPrincipalId === "string" &&
    typeof r.consentTimestamp === "number" &&
    Array.isArray(r.services) &&
    typeof ext === "object" &&
    ext !== null &&
    typeof ext.schema_version === "string" &&
    typeof ext.ledger === "object" &&
    Array.isArray(ext.events)
  );
}
