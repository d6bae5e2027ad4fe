/**
 * Login and bearer authentication of users: passwords (scrypt) give a session JWT
 * (HS256, 12 h); API tokens act for their owner. Every request uses the user's
 * current grants and disabled flag from the directory, so a revoked role or a
 * disabled account takes effect at once, not when the JWT expires.
 */
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { UserPrincipal } from '../http/server.ts';
import { API_TOKEN_PREFIX, type ApiTokenStore } from './api-tokens.ts';
import { publicUser, type User, type UserCredentials, type UserDirectory } from './directory.ts';
import { looksLikeJwt, signJwt, verifyJwt } from './jwt.ts';
import { LoginThrottle } from './login-throttle.ts';
import { hashPassword, needsRehash, verifyPassword } from './password.ts';

/** Dependencies and limits of the auth service. */
export interface AuthServiceOptions {
  directory: UserDirectory;
  tokens: ApiTokenStore;
  /** HS256 key of session tokens. */
  secret: Buffer;
  /** `iss` of session tokens: the hub id. */
  issuer: string;
  /** Session lifetime; default 12 h. */
  sessionTtlMs?: number;
  throttle?: LoginThrottle;
  logger?: Logger;
}

/** A successful login. */
export interface LoginResult {
  token: string;
  expiresAt: Date;
  user: User;
}

const invalidToken = (why: string) =>
  new CitysenseError('CS_ERR_AUTH_INVALID_TOKEN', `bearer token is not valid (${why}): log in again`, 401);

/** Password login, session tokens and API-token authentication. */
export class AuthService {
  readonly #o: AuthServiceOptions;
  readonly #throttle: LoginThrottle;
  readonly #log: Logger;
  #dummyHash: Promise<string> | undefined;

  constructor(options: AuthServiceOptions) {
    this.#o = options;
    this.#throttle = options.throttle ?? new LoginThrottle();
    this.#log = componentLogger('auth', options.logger);
  }

  /**
   * Checks a username and password. Throws CS_ERR_AUTH_LOCKED (429, details.retryAfterSeconds)
   * while the username is locked after repeated failures, else CS_ERR_AUTH_LOGIN_FAILED (401)
   * for an unknown user, a wrong password or a disabled account alike.
   */
  async login(username: string, password: string): Promise<LoginResult> {
    const lockedMs = this.#throttle.lockedFor(username);
    if (lockedMs > 0) throw locked(lockedMs);
    const user = await this.#o.directory.credentialsByUsername(username);
    // Unknown users cost one scrypt too, so timing does not tell which usernames exist.
    this.#dummyHash ??= hashPassword('citysense-no-such-user');
    const ok = await verifyPassword(password, user?.passwordHash ?? (await this.#dummyHash));
    if (!user || !ok || user.disabled) {
      this.#throttle.failure(username);
      throw new CitysenseError(
        'CS_ERR_AUTH_LOGIN_FAILED',
        'username or password is wrong, or the account is disabled',
        401,
        { reason: !user ? 'unknown-user' : !ok ? 'wrong-password' : 'disabled' },
      );
    }
    this.#throttle.success(username);
    if (needsRehash(user.passwordHash))
      await this.#o.directory.rehash(user.id, password).catch((err: unknown) => {
        this.#log.warn({ user: user.id, err: errorMessage(err) }, 'could not upgrade password hash');
      });
    return this.issue(user);
  }

  /** Issues a session token for a user. */
  issue(user: UserCredentials | User): LoginResult {
    const now = Date.now();
    // Same precision as iat, so a session lasts exactly its TTL.
    const exp = (now + (this.#o.sessionTtlMs ?? 12 * 3_600_000)) / 1000;
    const token = signJwt(
      {
        sub: user.id,
        username: user.username,
        agency: user.agencyId,
        roles: user.roles,
        // Millisecond precision (RFC 7519 §2 NumericDate may be fractional), so that a
        // password change ends sessions issued a moment before it.
        iat: now / 1000,
        exp,
        iss: this.#o.issuer,
      },
      this.#o.secret,
    );
    return { token, expiresAt: new Date(exp * 1000), user: publicUser(user) };
  }

  /**
   * The user behind a bearer token: a session JWT or a `csu_` API token. Returns null
   * for other tokens (not a user's); throws CS_ERR_AUTH_INVALID_TOKEN (401) for a bad,
   * expired or revoked user token or a disabled/deleted user.
   */
  async authenticate(bearer: string): Promise<UserPrincipal | null> {
    if (bearer.startsWith(API_TOKEN_PREFIX)) {
      const userId = await this.#o.tokens.owner(bearer);
      if (!userId) throw invalidToken('API token unknown, expired or revoked');
      return this.#principal(userId, 'api-token', null);
    }
    if (!looksLikeJwt(bearer)) return null;
    const claims = verifyJwt(bearer, this.#o.secret, this.#o.issuer);
    return this.#principal(claims.sub, 'session', claims.iat);
  }

  async #principal(userId: string, via: UserPrincipal['via'], iat: number | null): Promise<UserPrincipal> {
    let user: UserCredentials;
    try {
      user = await this.#o.directory.credentials(userId);
    } catch (err) {
      if (err instanceof CitysenseError && err.code === 'CS_ERR_USER_UNKNOWN')
        throw invalidToken('user no longer exists');
      throw err;
    }
    if (user.disabled) throw invalidToken('account disabled');
    if (iat !== null && iat * 1000 < user.sessionsValidAfter.getTime())
      throw invalidToken('session ended by a password change');
    return {
      kind: 'user',
      userId: user.id,
      username: user.username,
      agencyId: user.agencyId,
      roles: user.roles,
      via,
    };
  }
}

function locked(ms: number): CitysenseError {
  const retryAfterSeconds = Math.ceil(ms / 1000);
  return new CitysenseError(
    'CS_ERR_AUTH_LOCKED',
    `too many failed logins for this username: try again in ${retryAfterSeconds} s`,
    429,
    { retryAfterSeconds },
  );
}
