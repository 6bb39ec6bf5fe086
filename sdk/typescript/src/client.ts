// The Consentry API over `fetch` (Node >= 20 and browsers): one method per use, request and answer types
// from the generated OpenAPI types (schema.ts), errors as ConsentryProblem.

import { ConsentryProblem } from "./problem.js";
import type { Jwks } from "./jws.js";
import type { components, operations } from "./schema.js";

type Schemas = components["schemas"];
type Query<Op extends keyof operations> = operations[Op]["parameters"] extends { query?: infer Q }
  ? NonNullable<Q>
  : never;

export type CheckRequest = Schemas["CheckRequest"];
export type CheckResponse = Schemas["CheckResponse"];
export type RecordConsents = Schemas["RecordConsents"];
export type RecordedConsents = Schemas["RecordedConsents"];
export type ChangeIn = Schemas["ChangeIn"];
export type CurrentConsents = Schemas["CurrentConsents"];
export type History = Schemas["History"];
export type HistoryQuery = Query<"getConsentHistory">;
/** A receipt signed as a JWS on demand (`GET /v1/receipts/{id}?format=jws`). */
export type ReceiptOut = Schemas["ReceiptOut"];
/** A receipt that proves itself: the document, its events' inclusion proofs and a signed checkpoint. */
export type ReceiptProof = Schemas["ReceiptProof"];
/** An RFC 9162 consistency proof between two sizes of the log (`GET /v1/tlog/consistency`). */
export type ConsistencyProof = Schemas["ConsistencyOut"];
export type MintToken = Schemas["MintToken"];
export type MintedToken = Schemas["MintedTokenOut"];
export type CreateRequest = Schemas["CreateRequest"];
export type RequestOut = Schemas["RequestOut"];
export type RequestList = Schemas["RequestList"];
export type RequestListQuery = Query<"listRequests">;
export type ExtendRequest = Schemas["ExtendRequest"];
export type RejectRequest = Schemas["RejectRequest"];
export type CompleteTask = Schemas["CompleteTask"];
export type CreateDestination = Schemas["CreateDestination"];
export type UpdateDestination = Schemas["UpdateDestination"];
export type Destination = Schemas["DestinationOut"];
export type DeliveryList = Schemas["DeliveryList"];
export type DeliveryListQuery = Query<"listDeliveries">;
export type ReplayRequest = Schemas["ReplayRequest"];
export type ReplayOut = Schemas["ReplayOut"];
export type PairDevice = Schemas["PairDevice"];
export type PairedDevice = Schemas["PairedDevice"];

export interface ClientOptions {
  /** Where Consentry answers, e.g. `https://consent.example.com` (no trailing path). */
  baseUrl: string;
  /** A service API key (`csk_...`), a subject token or a device token, sent as `Authorization: Bearer`. */
  token?: string;
  /**
   * Why the caller reads a person's data, sent as `X-Consentry-Purpose`: it goes into that person's access
   * log.
   */
  purpose?: string;
  /** A `fetch` of your own (a proxy-aware one, a mock); the global `fetch` otherwise. */
  fetch?: typeof fetch;
}

interface Call {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined> | undefined;
  body?: unknown;
}

/** A client of one Consentry server with one credential. Every method throws ConsentryProblem on a 4xx/5xx. */
export class ConsentryClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;

  /** The data subject requests of the server (`/v1/requests`). */
  readonly requests: Requests;
  /** The downstream destinations (`/v1/destinations`). */
  readonly destinations: Destinations;

  constructor(options: ClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, "");
    this.#headers = { accept: "application/json, application/problem+json" };
    if (options.token !== undefined) this.#headers.authorization = `Bearer ${options.token}`;
    if (options.purpose !== undefined) this.#headers["x-consentry-purpose"] = options.purpose;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const call = <T>(c: Call) => this.#json<T>(c);
    this.requests = new Requests(call);
    this.destinations = new Destinations(call);
  }

  /** May this data be used for this purpose (through this channel, by this recipient), now? */
  check(question: CheckRequest): Promise<CheckResponse> {
    return this.#json({ method: "POST", path: "/v1/check", body: question });
  }

  /** Many checks in one request; the answers in the order asked. */
  async checkBatch(checks: CheckRequest[]): Promise<CheckResponse[]> {
    const out = await this.#json<Schemas["BatchResponse"]>({
      method: "POST",
      path: "/v1/check/batch",
      body: { checks },
    });
    return out.results;
  }

  /** Records consent changes for `subject`: the ledger events placed and one receipt with the proof of
   * their inclusion in the ledger's transparency log (`receiptJws` gives it signed as a JWS). */
  recordConsents(subject: string, changes: RecordConsents): Promise<RecordedConsents> {
    return this.#json({ method: "POST", path: `/v1/subjects/${seg(subject)}/consents`, body: changes });
  }

  /** The subject's consents in force, per purpose. */
  consents(subject: string): Promise<CurrentConsents> {
    return this.#json({ method: "GET", path: `/v1/subjects/${seg(subject)}/consents` });
  }

  /** One page of the subject's ledger history; pass `next` back as `after` for the next page. */
  history(subject: string, query: HistoryQuery = {}): Promise<History> {
    return this.#json({ method: "GET", path: `/v1/subjects/${seg(subject)}/consents/history`, query });
  }

  /**
   * A receipt by id (`rcpt_...`) with its proof of inclusion against the log's newest checkpoint; check it
   * with `verifyProvenReceipt` and `tlogVerifierKeys()`.
   */
  receipt(id: string): Promise<ReceiptProof> {
    return this.#json({ method: "GET", path: `/v1/receipts/${seg(id)}` });
  }

  /** A receipt by id signed as a JWS on demand; verify its `jws` with `verifyReceipt` and the JWKS. */
  receiptJws(id: string): Promise<ReceiptOut> {
    return this.#json({ method: "GET", path: `/v1/receipts/${seg(id)}`, query: { format: "jws" } });
  }

  /** The log's verifier keys (C2SP note form, one per line: the current key first), for `verifyProvenReceipt`. */
  async tlogVerifierKeys(): Promise<string> {
    return (await this.#send({ method: "GET", path: "/v1/tlog/vkey" }, "text/plain")).text();
  }

  /** The log's newest signed checkpoint (a C2SP signed note). */
  async tlogCheckpoint(): Promise<string> {
    return (await this.#send({ method: "GET", path: "/v1/tlog/checkpoint" }, "text/plain")).text();
  }

  /** An RFC 9162 consistency proof between two sizes of the log, for `verifyCheckpointConsistency`. */
  tlogConsistency(from: number | bigint, to: number | bigint): Promise<ConsistencyProof> {
    return this.#json({ method: "GET", path: "/v1/tlog/consistency", query: { from: String(from), to: String(to) } });
  }

  /** A short-lived token for the subject's own routes, and a preference-centre link. */
  mintSubjectToken(subject: string, options: MintToken = {}): Promise<MintedToken> {
    return this.#json({ method: "POST", path: `/v1/subjects/${seg(subject)}/tokens`, body: options });
  }

  /** Pairs a device with `subject`; the answer holds the device's token, shown only here. */
  pairDevice(subject: string, device: PairDevice): Promise<PairedDevice> {
    return this.#json({ method: "POST", path: `/v1/subjects/${seg(subject)}/devices`, body: device });
  }

  /** The signed consent snapshot of the device whose token this client holds (a compact JWS). */
  async deviceSnapshot(): Promise<string> {
    const response = await this.#send({ method: "GET", path: "/v1/device/consent" }, "application/jwt");
    return response.text();
  }

  /** The server's public signing keys (`/.well-known/jwks.json`), for verifying receipts offline. */
  jwks(): Promise<Jwks> {
    return this.#json({ method: "GET", path: "/.well-known/jwks.json" });
  }

  async #json<T>(call: Call): Promise<T> {
    const response = await this.#send(call, "application/json");
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  async #send(call: Call, accept: string): Promise<Response> {
    const url = new URL(this.#base + call.path);
    for (const [k, v] of Object.entries(call.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { ...this.#headers, accept: `${accept}, application/problem+json` };
    const init: RequestInit = { method: call.method, headers, redirect: "error" };
    if (call.body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(call.body);
    }
    const response = await this.#fetch(url, init);
    if (!response.ok) throw await ConsentryProblem.fromResponse(response);
    return response;
  }
}

type Caller = <T>(call: Call) => Promise<T>;

/** Data subject requests: access, portability, erasure, rectification, restriction, objection. */
export class Requests {
  readonly #call: Caller;
  constructor(call: Caller) {
    this.#call = call;
  }
  create(request: CreateRequest): Promise<RequestOut> {
    return this.#call({ method: "POST", path: "/v1/requests", body: request });
  }
  list(query: RequestListQuery = {}): Promise<RequestList> {
    return this.#call({ method: "GET", path: "/v1/requests", query });
  }
  get(id: string): Promise<RequestOut> {
    return this.#call({ method: "GET", path: `/v1/requests/${seg(id)}` });
  }
  extend(id: string, body: ExtendRequest): Promise<RequestOut> {
    return this.#call({ method: "POST", path: `/v1/requests/${seg(id)}/extend`, body });
  }
  reject(id: string, body: RejectRequest): Promise<RequestOut> {
    return this.#call({ method: "POST", path: `/v1/requests/${seg(id)}/reject`, body });
  }
  /** A downstream system confirms its part of a request. */
  completeTask(id: string, destinationId: string, body: CompleteTask = {}): Promise<RequestOut> {
    return this.#call({
      method: "POST",
      path: `/v1/requests/${seg(id)}/tasks/${seg(destinationId)}/complete`,
      body,
    });
  }
}

/** Where changes go: signed webhooks, NATS JetStream, MQTT. */
export class Destinations {
  readonly #call: Caller;
  constructor(call: Caller) {
    this.#call = call;
  }
  /** Creates a destination; a webhook's signing `secret` is in this answer only. */
  create(destination: CreateDestination): Promise<Destination> {
    return this.#call({ method: "POST", path: "/v1/destinations", body: destination });
  }
  async list(): Promise<Destination[]> {
    const out = await this.#call<Schemas["DestinationList"]>({ method: "GET", path: "/v1/destinations" });
    return out.destinations;
  }
  get(id: string): Promise<Destination> {
    return this.#call({ method: "GET", path: `/v1/destinations/${seg(id)}` });
  }
  update(id: string, changes: UpdateDestination): Promise<Destination> {
    return this.#call({ method: "PATCH", path: `/v1/destinations/${seg(id)}`, body: changes });
  }
  delete(id: string): Promise<void> {
    return this.#call({ method: "DELETE", path: `/v1/destinations/${seg(id)}` });
  }
  deliveries(id: string, query: DeliveryListQuery = {}): Promise<DeliveryList> {
    return this.#call({ method: "GET", path: `/v1/destinations/${seg(id)}/deliveries`, query });
  }
  replay(id: string, from: ReplayRequest): Promise<ReplayOut> {
    return this.#call({ method: "POST", path: `/v1/destinations/${seg(id)}/replay`, body: from });
  }
}

/** One path segment, escaped (subject ids are the brand's own and may hold any character). */
function seg(value: string): string {
  return encodeURIComponent(value);
}
