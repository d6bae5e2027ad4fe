/**
 * The node's one HTTP channel to the hub: every node route (assignments, OTA, operations)
 * is authenticated the same way (HTTP Basic `nodeId:password`, the MQTT credentials), has a
 * per-request time limit, and answers a desired-state document the node validates at the
 * boundary or takes a JSON report. Each caller brings its own error codes.
 */
import { type CitysenseError, errorMessage } from '@citysense/protocol';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** Where the hub is and how this node authenticates to it: HTTP Basic `nodeId:password` (the MQTT credentials). */
export interface HubCredentials {
  hubUrl: string;
  nodeId: string;
  password: string;
}

/** How a caller's errors are made: the hub is unreachable or erred (retry), or its answer breaks the contract. */
export interface HubErrors {
  unavailable: (why: string) => CitysenseError;
  invalid: (why: string) => CitysenseError;
}

/** A hub's answer read to the end. */
export interface HubAnswer {
  status: number;
  text: string;
}

const REQUEST_TIMEOUT_MS = 15_000;

/** Node-authenticated requests to the hub, each with a time limit. */
export class NodeHubHttp {
  readonly #credentials: HubCredentials;
  readonly #authorization: string;
  readonly #timeoutMs: number;

  constructor(credentials: HubCredentials, requestTimeoutMs = REQUEST_TIMEOUT_MS) {
    this.#credentials = credentials;
    const { nodeId, password } = credentials;
    this.#authorization = `Basic ${Buffer.from(`${nodeId}:${password}`).toString('base64')}`;
    this.#timeoutMs = requestTimeoutMs;
  }

  /** The node this channel speaks for. */
  get nodeId(): string {
    return this.#credentials.nodeId;
  }

  /** Absolute URL of a hub path such as an assignment's `packagePath`. */
  url(path: string): string {
    return new URL(path, this.#credentials.hubUrl).toString();
  }

  /** Headers that authenticate this node. */
  authHeaders(): Record<string, string> {
    return { authorization: this.#authorization };
  }

  /** `/v1/nodes/<this node>/<rest>`. */
  nodePath(rest: string): string {
    return `/v1/nodes/${encodeURIComponent(this.#credentials.nodeId)}/${rest}`;
  }

  /**
   * Sends one request and reads the answer to the end. Rejects with `errors.unavailable`
   * when the hub cannot be reached, is too slow or the answer breaks off; with the abort
   * reason when `signal` aborts.
   */
  async send(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal,
    errors: Pick<HubErrors, 'unavailable'>,
  ): Promise<HubAnswer> {
    let res: Response;
    try {
      res = await fetch(this.url(path), {
        method,
        headers: {
          ...this.authHeaders(),
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]),
      });
    } catch (err) {
      if (signal.aborted) throw err;
      throw errors.unavailable(`hub unreachable: ${errorMessage(err)}`);
    }
    const text = await res.text().catch((err: unknown) => {
      if (signal.aborted) throw err;
      throw errors.unavailable(`reading the hub's answer failed: ${errorMessage(err)}`);
    });
    return { status: res.status, text };
  }

  /**
   * This node's desired-state document at `nodePath(rest)`, with schema defaults applied and
   * checked against `schema` and addressed to this node; null when the hub has no such route
   * (404: an older hub). Other answers reject with `errors.unavailable`, a document that
   * breaks the contract with `errors.invalid`.
   */
  async document<T extends { nodeId: string }>(
    rest: string,
    schema: TSchema,
    signal: AbortSignal,
    errors: HubErrors,
  ): Promise<T | null> {
    const { status, text } = await this.send('GET', this.nodePath(rest), undefined, signal, errors);
    if (status === 404) return null;
    if (status !== 200) throw errors.unavailable(`hub answered HTTP ${status}: ${text.slice(0, 200)}`);
    let body: unknown;
    try {
      body = Value.Default(schema, JSON.parse(text));
    } catch {
      throw errors.invalid('the answer is not JSON');
    }
    const first = Value.Errors(schema, body).First();
    if (first) throw errors.invalid(`${first.path || '/'} ${first.message}`);
    const doc = body as T;
    if (doc.nodeId !== this.nodeId)
      throw errors.invalid(`it is addressed to node "${doc.nodeId}", this is "${this.nodeId}"`);
    return doc;
  }
}

/** The status to give a report the hub refused: 503 (send again later) for 5xx and 429, else 400. */
export function retryStatus(httpStatus: number): number {
  return httpStatus >= 500 || httpStatus === 429 ? 503 : 400;
}
