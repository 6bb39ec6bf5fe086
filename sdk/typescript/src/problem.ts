// Errors from the Consentry API: every 4xx and 5xx is an RFC 9457 problem (`application/problem+json`)
// with a stable `code`; ConsentryProblem carries it typed, so callers branch on `code`, not on text.

import type { components } from "./schema.js";

/** One problem inside a request, with the JSON path of the value at fault (`errors` of a 422). */
export type FieldProblem = components["schemas"]["FieldProblem"];

/** The problem document as the server sends it. */
export type ProblemDocument = components["schemas"]["Problem"];

/**
 * An error answer of the Consentry API: the RFC 9457 members (`type`, `title`, `status`, `detail`,
 * `instance`) and Consentry's stable `code` (`unauthorized`, `forbidden`, `validation_failed`,
 * `unknown_purpose`, `not_found`, ...), with `errors` naming the fields at fault.
 *
 * An answer that is not a problem document (a proxy's HTML page, say) becomes a problem with the code
 * `unexpected_response` and the HTTP status, so callers handle one error type.
 */
export class ConsentryProblem extends Error {
  override readonly name = "ConsentryProblem";
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly instance: string | undefined;
  readonly errors: readonly FieldProblem[];
  /** Seconds to wait before trying again, from `Retry-After` (429 and 503), when the server sent it. */
  readonly retryAfter: number | undefined;

  constructor(problem: ProblemDocument & { instance?: string }, retryAfter?: number) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.type = problem.type;
    this.title = problem.title;
    this.status = problem.status;
    this.detail = problem.detail;
    this.code = problem.code;
    this.instance = problem.instance;
    this.errors = problem.errors ?? [];
    this.retryAfter = retryAfter;
  }

  /** The problem an error response carries (its body is read). */
  static async fromResponse(response: Response): Promise<ConsentryProblem> {
    const text = await response.text();
    const header = response.headers.get("retry-after");
    const retryAfter = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
    const parsed = parseProblem(text);
    if (parsed !== undefined) {
      return new ConsentryProblem(parsed, retryAfter);
    }
    return new ConsentryProblem(
      {
        type: "about:blank",
        title: response.statusText || "Unexpected response",
        status: response.status,
        detail: `the server answered ${response.status} without a problem document`,
        code: "unexpected_response",
      },
      retryAfter,
    );
  }
}

function parseProblem(text: string): (ProblemDocument & { instance?: string }) | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.status !== "number" || typeof v.code !== "string") return undefined;
  const errors = Array.isArray(v.errors)
    ? v.errors.filter(
        (e): e is FieldProblem =>
          typeof e === "object" && e !== null && typeof e.path === "string" && typeof e.message === "string",
      )
    : undefined;
  return {
    type: typeof v.type === "string" ? v.type : "about:blank",
    title: typeof v.title === "string" ? v.title : "",
    status: v.status,
    detail: typeof v.detail === "string" ? v.detail : "",
    code: v.code,
    ...(typeof v.instance === "string" ? { instance: v.instance } : {}),
    ...(errors !== undefined ? { errors } : {}),
  };
}
