// A Standard Webhooks receiver for Node: verifies `webhook-signature` (HMAC-SHA256 over
// `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the `whsec_` secret a destination was created
// with) and the timestamp's freshness, then parses the CloudEvent in the body, typed by its type.
// Node only (node:crypto, node:http); the rest of the package runs in browsers too.

import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";

import { type CloudEvent, type ConsentryEvent, asCloudEvent, isKnownEventType } from "./events.js";

export type * from "./events.js";

/** Why a delivery was refused; `code` is stable. */
export type WebhookErrorCode =
  | "bad_secret"
  | "missing_header"
  | "bad_timestamp"
  | "timestamp_out_of_tolerance"
  | "bad_signature"
  | "not_a_cloudevent"
  | "unknown_type";

export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";
  constructor(
    readonly code: WebhookErrorCode,
    message: string,
    /** For `unknown_type`: the verified event, of a type this version of the package does not know. */
    readonly event?: CloudEvent<string, unknown>,
  ) {
    super(message);
  }
}

export interface VerifyOptions {
  /** How far `webhook-timestamp` may be from now, either way, in seconds (default 300, as Standard Webhooks advises). */
  toleranceSeconds?: number;
  /** The time to compare with (default: now). */
  now?: Date;
}

type HeaderSource = Headers | IncomingHttpHeaders | Record<string, string | string[] | undefined>;

/**
 * Verifies one delivery and returns its CloudEvent. `body` must be the raw body as received (not
 * re-serialised JSON). Throws WebhookVerificationError; a genuine event of a type this version does not
 * know is refused with `unknown_type` and carries the event, so a receiver can still acknowledge it.
 */
export function verifyWebhook(
  secret: string,
  headers: HeaderSource,
  body: string | Uint8Array,
  options: VerifyOptions = {},
): ConsentryEvent {
  const key = secretKey(secret);
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!/^\d{1,15}$/.test(timestamp)) throw new WebhookVerificationError("bad_timestamp", "webhook-timestamp is not whole seconds");
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(now - Number(timestamp)) > tolerance) {
    throw new WebhookVerificationError("timestamp_out_of_tolerance", "webhook-timestamp is too far from now");
  }
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(bytes).digest();
  // The header may list several signatures (a secret being rotated); one matching `v1` is enough.
  const matches = signatures.split(" ").some((entry) => {
    const [version, value] = entry.split(",", 2);
    if (version !== "v1" || value === undefined) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new WebhookVerificationError("bad_signature", "no webhook-signature matches");

  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new WebhookVerificationError("not_a_cloudevent", "the body is not JSON");
  }
  const event = asCloudEvent(parsed);
  if (event === undefined) throw new WebhookVerificationError("not_a_cloudevent", "the body is not a CloudEvent 1.0");
  if (!isKnownEventType(event.type)) {
    throw new WebhookVerificationError("unknown_type", `an event of type ${JSON.stringify(event.type.slice(0, 64))}`, event);
  }
  return event as ConsentryEvent;
}

/** What to do with each type of event; a type without a handler is acknowledged and dropped. */
export type EventHandlers = {
  [T in ConsentryEvent["type"]]?: (event: Extract<ConsentryEvent, { type: T }>) => void | Promise<void>;
};

export interface HandlerOptions extends VerifyOptions {
  /** The largest body accepted, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
}

/**
 * A `node:http` request listener that receives Consentry's webhooks: it verifies each delivery, calls the
 * handler for its type, and answers 204. A delivery that does not verify gets 401 (bad signature or
 * timestamp) or 400 (not a CloudEvent), and is not retried usefully; a handler that throws gets 500, so
 * Consentry retries it later. Events of unknown types are acknowledged with 204 and not handled.
 */
export function webhookListener(
  secret: string,
  handlers: EventHandlers,
  options: HandlerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  secretKey(secret);
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  return (req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        answer(res, 413);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > limit) return;
      void deliver(secret, handlers, options, req.headers, Buffer.concat(chunks)).then((status) => answer(res, status));
    });
    req.on("error", () => answer(res, 400));
  };
}

async function deliver(
  secret: string,
  handlers: EventHandlers,
  options: VerifyOptions,
  headers: IncomingHttpHeaders,
  body: Buffer,
): Promise<number> {
  let event: ConsentryEvent;
  try {
    event = verifyWebhook(secret, headers, body, options);
  } catch (e) {
    if (!(e instanceof WebhookVerificationError)) return 500;
    if (e.code === "unknown_type") return 204;
    return e.code === "not_a_cloudevent" ? 400 : 401;
  }
  const handle = handlers[event.type] as ((e: ConsentryEvent) => void | Promise<void>) | undefined;
  try {
    await handle?.(event);
    return 204;
  } catch {
    return 500;
  }
}

function answer(res: ServerResponse, status: number): void {
  if (res.headersSent) return;
  res.writeHead(status).end();
}

function secretKey(secret: string): Buffer {
  const text = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    throw new WebhookVerificationError("bad_secret", "the secret is not whsec_ followed by base64");
  }
  const key = Buffer.from(text, "base64");
  if (key.length < 16) throw new WebhookVerificationError("bad_secret", "the secret is shorter than 16 bytes");
  return key;
}

function header(headers: HeaderSource, name: string): string {
  const value =
    typeof (headers as Headers).get === "function"
      ? (headers as Headers).get(name)
      : (headers as Record<string, string | string[] | undefined>)[name];
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== "string" || text.length === 0) {
    throw new WebhookVerificationError("missing_header", `the ${name} header is missing`);
  }
  return text;
}
