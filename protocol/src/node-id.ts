import { CitysenseError } from './errors.ts';

/**
 * Sparkplug group, edge node and device ids: Sparkplug 3.0 §4.1.1 forbids `+`, `#`
 * and `/`; citysense further keeps them to a portable set so they work in URLs,
 * file names and SQL without quoting.
 */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** True when `id` is a valid group, node or device id. */
export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** Throws CS_ERR_ID_INVALID unless `id` is valid. */
export function assertValidId(id: string, what: string): void {
  if (!isValidId(id)) {
    throw new CitysenseError(
      'CS_ERR_ID_INVALID',
      `${what} "${id}" is not valid: use 1-64 characters from A-Z a-z 0-9 _ . : - starting with a letter or digit`,
      400,
    );
  }
}
