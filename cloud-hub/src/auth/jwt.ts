/**
 * JSON Web Tokens for user sessions, HS256 only (RFC 7519, RFC 7515; the `alg`
 * header is checked before anything else, so `none` and every other algorithm are
 * refused — RFC 8725 §3.1). The key is generated into the data dir at first start
 * (mode 0600), like the admin token.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CitysenseError } from '@citysense/protocol';
import { REVIEW_CATEGORIES, ROLES, type RoleGrant } from './roles.ts';

/** Claims of a citysense session token. */
export interface SessionClaims {
  /** User id. */
  sub: string;
  username: string;
  /** The user's agency id. */
  agency: string;
  /** Roles when the token was issued (informational: each request uses the current grants). */
  roles: RoleGrant[];
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** Expires at, seconds since the epoch. */
  exp: number;
  iss: string;
}

/** File in the data dir that holds the session signing key. */
export function jwtSecretPath(dataDir: string): string {
  return join(dataDir, 'jwt-secret');
}

/** Reads the session key from the data dir, or generates and stores one (32 bytes, mode 0600). */
export async function resolveJwtSecret(dataDir: string): Promise<Buffer> {
  const path = jwtSecretPath(dataDir);
  const stored = await readFile(path, 'utf8').then(
    (t) => Buffer.from(t.trim(), 'base64url'),
    () => Buffer.alloc(0),
  );
  if (stored.length >= 32) return stored;
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32);
  await writeFile(path, `${secret.toString('base64url')}\n`, { mode: 0o600 });
  return secret;
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

const invalid = (why: string) =>
  new CitysenseError('CS_ERR_AUTH_INVALID_TOKEN', `session token is not valid (${why}): log in again`, 401);

/** Signs claims with HS256. */
export function signJwt(claims: SessionClaims, secret: Buffer): string {
  const body = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** Whether a bearer token has the shape of a JWT (three base64url parts). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

function decodeJson(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Verifies an HS256 token and returns its claims; throws CS_ERR_AUTH_INVALID_TOKEN
 * (401) for another algorithm, a bad signature, malformed claims or expiry.
 */
export function verifyJwt(token: string, secret: Buffer, issuer: string, nowMs = Date.now()): SessionClaims {
  const [header, payload, signature, extra] = token.split('.');
  if (header === undefined || payload === undefined || signature === undefined || extra !== undefined)
    throw invalid('not a JWT');
  const h = decodeJson(header) as { alg?: unknown; typ?: unknown; crit?: unknown } | undefined;
  if (!h || typeof h !== 'object' || h.alg !== 'HS256') throw invalid('algorithm must be HS256');
  if (h.crit !== undefined) throw invalid('unsupported critical header');
  const expected = createHmac('sha256', secret).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid('bad signature');
  const c = decodeJson(payload) as Partial<SessionClaims> | undefined;
  if (
    !c ||
    typeof c.sub !== 'string' ||
    typeof c.username !== 'string' ||
    typeof c.agency !== 'string' ||
    typeof c.iat !== 'number' ||
    typeof c.exp !== 'number' ||
    !Array.isArray(c.roles)
  )
    throw invalid('malformed claims');
  if (c.iss !== issuer) throw invalid('issued by another hub');
  const now = nowMs / 1000;
  if (c.exp <= now) throw invalid('expired');
  // Allow a minute of clock skew between hubs sharing a key.
  if (c.iat > now + 60) throw invalid('issued in the future');
  const roles = c.roles.filter(
    (g): g is RoleGrant =>
      typeof g === 'object' &&
      g !== null &&
      (ROLES as readonly unknown[]).includes(g.role) &&
      (g.category === undefined || (REVIEW_CATEGORIES as readonly unknown[]).includes(g.category)),
  );
  return { sub: c.sub, username: c.username, agency: c.agency, roles, iat: c.iat, exp: c.exp, iss: c.iss };
}
