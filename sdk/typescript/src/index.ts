// @consentry/client: the Consentry API over fetch, typed from the server's OpenAPI document, and offline
// verification of what the server signs. The Node-only webhook receiver is `@consentry/client/webhooks`.

export { ConsentryClient, Destinations, Requests } from "./client.js";
export type * from "./client.js";
export { ConsentryProblem } from "./problem.js";
export type { FieldProblem, ProblemDocument } from "./problem.js";
export { VerificationError, verifyJws } from "./jws.js";
export type { Jwk, Jwks, VerificationCode, VerifiedJws } from "./jws.js";
export { RECEIPT_SCHEMA_VERSION, RECEIPT_TYP, RECEIPT_VERSION, verifyReceipt } from "./receipts.js";
export type * from "./receipts.js";
export {
  leafHash,
  nodeHash,
  openCheckpoint,
  openNote,
  parseVerifierKeys,
  rootFromInclusion,
  verifyCheckpointConsistency,
  verifyConsistency,
  verifyProvenReceipt,
} from "./tlog.js";
export type { Checkpoint, Leaf, ProvenReceipt, VerifiedReceipt, VerifierKey } from "./tlog.js";
export type * from "./events.js";
export { isKnownEventType } from "./events.js";
export type { components, operations, paths } from "./schema.js";
