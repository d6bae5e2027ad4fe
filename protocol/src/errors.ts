/**
 * Coded errors shared by every citysense component. A code is stable API: clients
 * and tests match on it, so never rename one; add a new code instead.
 */
export class CitysenseError extends Error {
  /** Stable machine-readable code, `CS_ERR_<AREA>_<WHAT>`. */
  readonly code: string;
  /** HTTP status when the error crosses the HTTP API. */
  readonly statusCode: number;
  /** Optional structured details (validation problems, offending ids). */
  readonly details: unknown;

  constructor(code: string, message: string, statusCode = 500, details?: unknown) {
    super(message);
    this.name = 'CitysenseError';
    this.code = code;
    this.statusCode = statusCode;
    this.details = details;
  }
}

/** True when `err` is a CitysenseError carrying `code`. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof CitysenseError && err.code === code;
}

/** Message of any thrown value, for logs and reasons. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
