import { mkdir } from 'node:fs/promises';
import {
  CitysenseError,
  componentLogger,
  errorMessage,
  generateEd25519,
  isValidId,
  type Logger,
  type NodeHardware,
  signEd25519,
} from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type BackoffOptions, backoffDelay, sleep } from './backoff.ts';
import { collectHardware } from './hardware.ts';
import { IdentityStore, type NodeIdentity } from './identity-store.ts';
import { AGENT_VERSION } from './version.ts';

/** Body of `POST {hub}/v1/nodes/enroll`. */
export interface EnrollRequest {
  token: string;
  /** Ed25519 SPKI PEM. */
  publicKey: string;
  /** Base64 Ed25519 signature by the node key over `${token}\n${publicKey}` (proof of possession). */
  signature: string;
  agentVersion: string;
  hardware: NodeHardware;
  name?: string | undefined;
  location?: { lon: number; lat: number } | undefined;
  poleId?: string | undefined;
}

/** The hub's 201 answer to an enrolment, validated at the boundary. */
export const EnrollResponse = Type.Object({
  nodeId: Type.String({ minLength: 1 }),
  groupId: Type.String({ minLength: 1 }),
  hubId: Type.String({ minLength: 1 }),
  mqtt: Type.Object({
    url: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
    username: Type.String(),
    password: Type.String(),
    clientId: Type.String({ minLength: 1 }),
  }),
});
/** The hub's 201 answer to an enrolment. */
export type EnrollResponse = Static<typeof EnrollResponse>;

const HubError = Type.Object({ code: Type.String(), message: Type.String() });

/** What a field engineer should do for each enrolment refusal the hub can send. */
const ADVICE: Record<string, string> = {
  CS_ERR_TOKEN_USED:
    'this enrolment token was already used: ask the hub operator for a new token, or, if this box was enrolled before, restore its identity.json into the state dir',
  CS_ERR_TOKEN_EXPIRED:
    'this enrolment token has expired: ask the hub operator for a new token and start the agent with it',
  CS_ERR_TOKEN_UNKNOWN:
    'the hub does not know this enrolment token: check that it was copied completely and that hubUrl points at the hub that issued it',
  CS_ERR_TOKEN_NODE_MISMATCH:
    'this replacement token was issued for another node: ask for a replacement token for the node this box replaces (citysense token replace <nodeId>)',
  CS_ERR_NODE_UNKNOWN:
    'the node this replacement token was issued for is no longer active (deregistered): ask the hub operator for a new enrolment token instead',
};

/** Milliseconds one enrolment HTTP request may take before it counts as a network failure. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Options of the enrolment client. */
export interface EnrollmentClientOptions {
  hubUrl: string;
  backoff: BackoffOptions;
  requestTimeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

/** A transient failure worth retrying (network error, timeout, 5xx). */
class RetryableEnrollError extends Error {}

/**
 * Client of the hub's enrolment endpoint. Refusals (4xx) surface at once as
 * CitysenseError with the hub's code; network errors and 5xx are retried with
 * backoff until the signal aborts, because a box on a pole may boot before its uplink.
 */
export class EnrollmentClient {
  readonly #o: EnrollmentClientOptions;
  readonly #log: Logger;

  constructor(o: EnrollmentClientOptions) {
    this.#o = o;
    this.#log = o.logger ?? componentLogger('enrollment');
  }

  /** Enrols; resolves with the hub's validated answer. */
  async enroll(request: EnrollRequest, signal: AbortSignal): Promise<EnrollResponse> {
    const url = new URL('/v1/nodes/enroll', this.#o.hubUrl).toString();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#post(url, request, signal);
      } catch (err) {
        if (!(err instanceof RetryableEnrollError) || signal.aborted) throw err;
        const delay = backoffDelay(attempt, this.#o.backoff);
        this.#log.warn({ url, attempt, delayMs: delay, err: err.message }, 'enrolment failed, retrying');
        await sleep(delay, signal);
      }
    }
  }

  async #post(url: string, request: EnrollRequest, signal: AbortSignal): Promise<EnrollResponse> {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(request),
        signal: AbortSignal.any([
          signal,
          AbortSignal.timeout(this.#o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS),
        ]),
      });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new RetryableEnrollError(`hub unreachable: ${errorMessage(err)}`);
    }
    const text = await res.text().catch((err: unknown) => {
      throw new RetryableEnrollError(`reading hub answer failed: ${errorMessage(err)}`);
    });
    if (res.status >= 500) throw new RetryableEnrollError(`hub answered HTTP ${res.status}`);
    const body = parseJson(text);
    if (res.status >= 400) throw refusal(res.status, body);
    const first = Value.Errors(EnrollResponse, body).First();
    if (res.status !== 201 && res.status !== 200) {
      throw new CitysenseError(
        'CS_ERR_ENROLL_RESPONSE',
        `hub answered HTTP ${res.status} to enrolment; expected 201`,
        502,
      );
    }
    if (first) {
      throw new CitysenseError(
        'CS_ERR_ENROLL_RESPONSE',
        `hub enrolment answer is malformed at ${first.path || '/'} (${first.message}): check that hubUrl points at a citysense hub of a compatible version`,
        502,
      );
    }
    const answer = body as EnrollResponse;
    for (const [what, id] of [
      ['nodeId', answer.nodeId],
      ['groupId', answer.groupId],
      ['hubId', answer.hubId],
    ] as const) {
      if (!isValidId(id)) {
        throw new CitysenseError(
          'CS_ERR_ENROLL_RESPONSE',
          `hub assigned an invalid ${what} "${id}"; report this to the hub operator`,
          502,
        );
      }
    }
    return answer;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function refusal(status: number, body: unknown): CitysenseError {
  if (Value.Check(HubError, body)) {
    const advice = ADVICE[body.code];
    const message = advice ? `${advice} (hub: ${body.message})` : `hub refused enrolment: ${body.message}`;
    return new CitysenseError(body.code, message, status, { hubMessage: body.message });
  }
  return new CitysenseError(
    'CS_ERR_ENROLL_REJECTED',
    `hub refused enrolment with HTTP ${status}: check hubUrl and the token`,
    status,
  );
}

/** Derives the broker URL when the hub leaves it out: `mqtt://<hub host>:1883`. */
export function deriveMqttUrl(hubUrl: string): string {
  return `mqtt://${new URL(hubUrl).hostname}:1883`;
}

/** What `ensureIdentity` needs from the agent configuration. */
export interface EnsureIdentityOptions {
  hubUrl: string;
  token?: string | undefined;
  stateDir: string;
  name?: string | undefined;
  location?: { lon: number; lat: number } | undefined;
  poleId?: string | undefined;
  /** Inference backends to report in the hardware facts. */
  executionProviders?: string[] | undefined;
  /** Gateway hardware model to report (OTA campaigns match artifacts against it). */
  hardwareModel?: string | undefined;
  backoff: BackoffOptions;
  logger?: Logger | undefined;
}

/**
 * Returns the node identity, enrolling first when the state dir has none. An
 * existing identity wins over a configured token, so a restart never re-enrols.
 */
export async function ensureIdentity(o: EnsureIdentityOptions, signal: AbortSignal): Promise<NodeIdentity> {
  const log = o.logger ?? componentLogger('enrollment');
  const store = new IdentityStore(o.stateDir);
  const existing = await store.load();
  if (existing) {
    if (o.token)
      log.info(
        { nodeId: existing.nodeId, stateDir: o.stateDir },
        'already enrolled: the configured token is ignored (a box taking over another node with a replacement token needs an empty state dir)',
      );
    if (existing.hubUrl !== o.hubUrl) {
      log.warn(
        { stored: existing.hubUrl, configured: o.hubUrl },
        'configured hubUrl differs from the enrolled hub; using the enrolled identity',
      );
    }
    return existing;
  }
  if (!o.token) {
    throw new CitysenseError(
      'CS_ERR_ENROLL_TOKEN_MISSING',
      `this box is not enrolled (no ${store.path}): start the agent with an enrolment token issued by the hub`,
      400,
    );
  }
  await mkdir(o.stateDir, { recursive: true });
  const keys = generateEd25519();
  const request: EnrollRequest = {
    token: o.token,
    publicKey: keys.publicKey,
    signature: signEd25519(keys.privateKey, `${o.token}\n${keys.publicKey}`),
    agentVersion: AGENT_VERSION,
    hardware: await collectHardware(o.stateDir, o.executionProviders, o.hardwareModel),
    name: o.name,
    location: o.location,
    poleId: o.poleId,
  };
  const client = new EnrollmentClient({ hubUrl: o.hubUrl, backoff: o.backoff, logger: log });
  const answer = await client.enroll(request, signal);
  const identity: NodeIdentity = {
    version: 1,
    nodeId: answer.nodeId,
    groupId: answer.groupId,
    hubId: answer.hubId,
    hubUrl: o.hubUrl,
    publicKey: keys.publicKey,
    privateKey: keys.privateKey,
    mqtt: { ...answer.mqtt, url: answer.mqtt.url ?? deriveMqttUrl(o.hubUrl) },
    enrolledAt: new Date().toISOString(),
  };
  await store.save(identity);
  log.info({ nodeId: identity.nodeId, groupId: identity.groupId, hubId: identity.hubId }, 'enrolled');
  return identity;
}
