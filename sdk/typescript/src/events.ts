// The CloudEvents Consentry sends to destinations (CloudEvents 1.0, structured JSON), typed by event type.
// The data shapes follow crates/service/src/events.rs, requests.rs and erasure.rs of the server.

/** A decision as `POST /v1/check` answers it. */
export interface EventDecision {
  allowed: boolean;
  reason: string;
  event_id: string | null;
  /** Present exactly when `reason` is `not_covered`: `category`, `channel` or `recipient`. */
  not_covered?: string;
}

export interface CloudEvent<T extends string, D> {
  specversion: "1.0";
  /** Stays the same across retries: de-duplicate by (`source`, `id`). */
  id: string;
  source: string;
  type: T;
  time: string;
  datacontenttype: "application/json";
  /** The brand's id of the person; absent when they were erased before it was sent (then `erased` is true). */
  subject?: string;
  erased?: boolean;
  data: D;
}

export type ConsentEventType =
  | "consent.granted"
  | "consent.denied"
  | "consent.withdrawn"
  | "consent.objected"
  | "consent.restricted"
  | "consent.renewed"
  | "consent.expired";

export interface ConsentEventData {
  /** The ledger event. */
  event: {
    id: string;
    seq: number;
    purpose: string;
    action: string;
    categories: string[];
    channels: string[];
    recipients: string[];
    notice: string | null;
    notice_version: number | null;
    collection_point: string | null;
    actor: string;
    recorded_at: string;
    expires_at: string | null;
    hash: string;
  };
  /** The subject's decision for the purpose after the change, overall and per channel. */
  decision: {
    purpose: string;
    overall: EventDecision | null;
    channels: (EventDecision & { channel: string })[];
  };
}

export interface RecordDeletedData {
  record: {
    id: string;
    device_id: string | null;
    category: string;
    purpose: string;
    content_type: string;
    size: number;
    collected_at: string;
    stored_at: string;
  };
  /** `request`, `retention` or `withdrawal`. */
  reason: string;
  deleted_at: string;
}

export interface RequestEventData {
  request: {
    id: string;
    type: string;
    status: string;
    received_at: string;
    due_at: string;
    details: unknown;
  };
  /** The destinations that must confirm their part. */
  tasks: string[];
  /** The route a destination calls to confirm its part. */
  confirm: string;
}

export type ConsentEvent = CloudEvent<ConsentEventType, ConsentEventData>;
export type RecordDeletedEvent = CloudEvent<"record.deleted", RecordDeletedData>;
export type RequestEvent = CloudEvent<"request.created" | "request.overdue", RequestEventData>;
export type SubjectErasedEvent = CloudEvent<"subject.erased", { erased_at: string }>;

/** Every event Consentry sends; `switch (event.type)` narrows `data`. */
export type ConsentryEvent = ConsentEvent | RecordDeletedEvent | RequestEvent | SubjectErasedEvent;
export type ConsentryEventType = ConsentryEvent["type"];

const TYPES: ReadonlySet<string> = new Set<ConsentryEventType>([
  "consent.granted",
  "consent.denied",
  "consent.withdrawn",
  "consent.objected",
  "consent.restricted",
  "consent.renewed",
  "consent.expired",
  "record.deleted",
  "request.created",
  "request.overdue",
  "subject.erased",
]);

/** Whether `type` is one this version of the package knows. */
export function isKnownEventType(type: string): type is ConsentryEventType {
  return TYPES.has(type);
}

/**
 * Checks the CloudEvents 1.0 envelope of a parsed JSON value (the required attributes and their types)
 * and returns it; `undefined` when it is not one.
 */
export function asCloudEvent(value: unknown): CloudEvent<string, unknown> | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const e = value as Record<string, unknown>;
  const text = (k: string) => typeof e[k] === "string" && (e[k] as string).length > 0;
  if (e.specversion !== "1.0" || !text("id") || !text("source") || !text("type") || !text("time")) return undefined;
  if (e.datacontenttype !== "application/json" || !("data" in e)) return undefined;
  if (e.subject !== undefined && typeof e.subject !== "string") return undefined;
  if (e.erased !== undefined && typeof e.erased !== "boolean") return undefined;
  return e as unknown as CloudEvent<string, unknown>;
}
