/** Coded errors for MANSCDP bodies (GB/T 28181-2016/2022 §A.2): one code for every bad input. */
import { CitysenseError } from '../errors.ts';

/** Code of every rejected MANSCDP body: malformed XML, bad charset, missing or invalid fields. */
export const MANSCDP_INVALID = 'CS_ERR_MANSCDP_INVALID';

/** A 400 error saying why a received MANSCDP body was refused. */
export function manscdpInvalid(why: string, details?: unknown): CitysenseError {
  return new CitysenseError(MANSCDP_INVALID, `MANSCDP body refused: ${why}`, 400, details);
}
