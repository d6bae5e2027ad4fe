/**
 * A SIP endpoint: a transport plus the transaction layer (RFC 3261 §17). Client
 * transactions retransmit over UDP (Timer A/E, doubling from T1 to T2) and settle on the
 * final response or time out (Timer B/F); server transactions absorb retransmitted
 * requests by answering them again with the cached final response (Timer J).
 * Every request/response exchange goes through `request()`, one waiter keyed by branch.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import {
  canonicalHeaderName,
  header,
  headerParams,
  headers,
  parseCSeq,
  type SipHeader,
  type SipMessage,
  type SipParseError,
  type SipRequest,
  type SipResponse,
  serializeSipMessage,
  tagOf,
} from './message.ts';
import {
  peerKey,
  type SipPeer,
  SipTransport,
  type SipTransportOptions,
  type SipTransportStats,
} from './transport.ts';

/** Reason phrases of the statuses citysense sends (RFC 3261 §21). */
const REASONS: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  415: 'Unsupported Media Type',
  420: 'Bad Extension',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  486: 'Busy Here',
  488: 'Not Acceptable Here',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  513: 'Message Too Large',
};

/** The standard reason phrase of a status. */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status < 300 ? 'OK' : 'Error');
}

/** A random token for tags, branches and Call-IDs. */
export function sipToken(bytes = 8): string {
  // Tags and branches are drawn from a pool refilled 4 KiB at a time: one random syscall per
  // few hundred responses instead of one per response (it showed in keepalive profiles).
  if (tokenPoolAt + bytes > tokenPool.length) {
    tokenPool = randomBytes(4096);
    tokenPoolAt = 0;
  }
  const token = tokenPool.toString('hex', tokenPoolAt, tokenPoolAt + bytes);
  tokenPoolAt += bytes;
  return token;
}

let tokenPool = Buffer.alloc(0);
let tokenPoolAt = 0;

/** The magic cookie every RFC 3261 branch starts with (§8.1.1.7). */
const BRANCH_COOKIE = 'z9hG4bK';

/** Options of an endpoint. */
export interface SipEndpointOptions extends SipTransportOptions {
  /** `User-Agent` / `Server` header. */
  userAgent?: string | undefined;
  /** Address written into Via and Contact, as peers reach us; default the bind host. */
  publicAddress?: string | undefined;
  /** RTT estimate T1, ms (default 500). */
  t1Ms?: number | undefined;
  /** Longest a client transaction waits for its final response, ms (default 64 × T1). */
  transactionTimeoutMs?: number | undefined;
}

/** What to send in a request; the endpoint adds Via, Max-Forwards, Call-ID, CSeq and tags as needed. */
export interface OutgoingRequest {
  method: string;
  uri: string;
  peer: SipPeer;
  /** From name-addr without tag; a tag is added when absent. */
  from: string;
  /** To name-addr (a tag when in a dialog). */
  to: string;
  callId?: string | undefined;
  cseq?: number | undefined;
  headers?: SipHeader[] | undefined;
  body?: Buffer | Uint8Array | undefined;
  contentType?: string | undefined;
  /** Final-response timeout of this transaction, ms. */
  timeoutMs?: number | undefined;
}

/** Options of a response. */
export interface ResponseOptions {
  reason?: string | undefined;
  headers?: SipHeader[] | undefined;
  body?: Buffer | Uint8Array | undefined;
  contentType?: string | undefined;
  /** To tag for a response that creates a dialog; one is generated for a final response without one. */
  toTag?: string | undefined;
}

/** Events of an endpoint. */
export interface SipEndpointEvents {
  /** A new request (retransmissions are absorbed). ACKs of 2xx arrive here too. */
  request: [request: SipRequest, peer: SipPeer];
  /** A response that matched no transaction (a late retransmission). */
  strayResponse: [response: SipResponse, peer: SipPeer];
}

interface ClientTransaction {
  resolve: (response: SipResponse) => void;
  reject: (err: Error) => void;
  retransmit: NodeJS.Timeout | undefined;
  timeout: NodeJS.Timeout;
}

interface ServerTransaction {
  response: Buffer | undefined;
  peer: SipPeer;
  expiry: NodeJS.Timeout;
}

/** Counters of an endpoint. */
export interface SipEndpointStats extends SipTransportStats {
  requestsIn: number;
  retransmissionsAbsorbed: number;
  clientTransactions: number;
  timeouts: number;
}

/** A SIP user agent core over UDP and TCP on one port. */
export class SipEndpoint extends EventEmitter<SipEndpointEvents> {
  readonly transport: SipTransport;
  readonly #o: SipEndpointOptions;
  readonly #log: Logger;
  readonly #client = new Map<string, ClientTransaction>();
  readonly #server = new Map<string, ServerTransaction>();
  #requestsIn = 0;
  #absorbed = 0;
  #timeouts = 0;
  #cseq = 1;

  constructor(o: SipEndpointOptions = {}) {
    super();
    this.#o = o;
    this.#log = componentLogger('sip', o.logger);
    this.transport = new SipTransport(o);
    this.transport.on('message', (message, peer) => this.#dispatch(message, peer));
    this.transport.on('malformed', (error, peer, raw) => this.#answerMalformed(error, peer, raw));
  }

  /** Binds the transport. Idempotent. */
  async start(): Promise<void> {
    await this.transport.start();
  }

  /** Fails pending transactions and closes the transport. Idempotent. */
  async stop(): Promise<void> {
    for (const [key, tx] of this.#client)
      this.#settle(key, tx, new CitysenseError('CS_ERR_SIP_STOPPED', 'the SIP endpoint stopped', 503));
    for (const tx of this.#server.values()) clearTimeout(tx.expiry);
    this.#server.clear();
    await this.transport.stop();
  }

  /** The port peers reach us on. */
  get port(): number {
    return this.transport.port;
  }

  /** The address written into Via and Contact. */
  get address(): string {
    return this.#o.publicAddress ?? this.transport.host;
  }

  /** Counters since start. */
  stats(): SipEndpointStats {
    return {
      ...this.transport.stats(),
      requestsIn: this.#requestsIn,
      retransmissionsAbsorbed: this.#absorbed,
      clientTransactions: this.#client.size,
      timeouts: this.#timeouts,
    };
  }

  get #t1(): number {
    return this.#o.t1Ms ?? 500;
  }

  #dispatch(message: SipMessage, peer: SipPeer): void {
    if (message.kind === 'response') {
      this.#onResponse(message, peer);
      return;
    }
    const key = serverKey(message, peer);
    const known = this.#server.get(key);
    if (known) {
      this.#absorbed++;
      if (known.response) this.#sendBytes(known.response, peer);
      return;
    }
    // An ACK to a non-2xx final answer belongs to the INVITE's server transaction (§17.2.1).
    if (message.method === 'ACK' && this.#server.has(serverKey(message, peer, 'INVITE'))) return;
    if (message.method !== 'ACK') {
      this.#server.set(key, {
        response: undefined,
        peer,
        expiry: setTimeout(() => this.#server.delete(key), 64 * this.#t1).unref(),
      });
    }
    this.#requestsIn++;
    this.emit('request', message, peer);
  }

  #onResponse(response: SipResponse, peer: SipPeer): void {
    const via = headers(response, 'via')[0];
    const branch = via === undefined ? undefined : headerParams(via, ';').get('branch');
    const cseq = parseCSeq(header(response, 'cseq') as string);
    const key = `${branch}|${cseq.method}`;
    const tx = this.#client.get(key);
    if (!tx) {
      this.emit('strayResponse', response, peer);
      return;
    }
    if (response.status < 200) {
      // A provisional answer stops request retransmission over UDP (Timer A/E keep going for non-INVITE at T2; simplify to stop).
      if (tx.retransmit) clearTimeout(tx.retransmit);
      tx.retransmit = undefined;
      return;
    }
    this.#settle(key, tx, response);
  }

  #settle(key: string, tx: ClientTransaction, outcome: SipResponse | Error): void {
    this.#client.delete(key);
    if (tx.retransmit) clearTimeout(tx.retransmit);
    clearTimeout(tx.timeout);
    if (outcome instanceof Error) tx.reject(outcome);
    else tx.resolve(outcome);
  }

  /** Sends a response to `request` and caches it for retransmissions of the request. */
  async respond(request: SipRequest, peer: SipPeer, status: number, o: ResponseOptions = {}): Promise<void> {
    const response = this.buildResponse(request, status, o, peer);
    const bytes = serializeSipMessage(response);
    const tx = this.#server.get(serverKey(request, peer));
    if (tx && status >= 200) tx.response = bytes;
    await this.#send(bytes, peer);
  }

  /** The response to `request` with the dialog headers copied (§8.2.6.2). */
  buildResponse(request: SipRequest, status: number, o: ResponseOptions = {}, peer?: SipPeer): SipResponse {
    const to = header(request, 'to') as string;
    const toTag = tagOf(to) === undefined && status > 100 ? (o.toTag ?? sipToken(4)) : undefined;
    const list: SipHeader[] = [
      ...headers(request, 'via').map((value, i) => ({
        name: 'Via',
        value: i === 0 && peer ? receivedVia(value, peer) : value,
      })),
      { name: 'From', value: header(request, 'from') as string },
      { name: 'To', value: toTag ? `${to};tag=${toTag}` : to },
      { name: 'Call-ID', value: header(request, 'call-id') as string },
      { name: 'CSeq', value: header(request, 'cseq') as string },
      ...(this.#o.userAgent ? [{ name: 'Server', value: this.#o.userAgent }] : []),
      ...(o.headers ?? []),
    ];
    if (o.body && o.body.length > 0)
      list.push({ name: 'Content-Type', value: o.contentType ?? 'Application/MANSCDP+xml' });
    return {
      kind: 'response',
      status,
      reason: o.reason ?? reasonPhrase(status),
      headers: list,
      body: o.body ? Buffer.from(o.body) : Buffer.alloc(0),
    };
  }

  /** The Via value this endpoint puts on a request to `peer`. */
  via(peer: SipPeer, branch: string): string {
    const port = peer.transport === 'tcp' ? (this.transport.localTcpPort(peer) ?? this.port) : this.port;
    return `SIP/2.0/${peer.transport.toUpperCase()} ${this.address}:${port};rport;branch=${branch}`;
  }

  /** The Contact URI of this endpoint for `user`. */
  contact(user: string, peer: SipPeer): string {
    return `<sip:${user}@${this.address}:${this.port}${peer.transport === 'tcp' ? ';transport=tcp' : ''}>`;
  }

  /** Sends a request and resolves with its final response; rejects CS_ERR_SIP_TIMEOUT. */
  request(o: OutgoingRequest): Promise<SipResponse> {
    const branch = `${BRANCH_COOKIE}${sipToken(8)}`;
    const method = o.method.toUpperCase();
    const from = tagOf(o.from) === undefined ? `${o.from};tag=${sipToken(4)}` : o.from;
    const list: SipHeader[] = [
      { name: 'Via', value: this.via(o.peer, branch) },
      { name: 'From', value: from },
      { name: 'To', value: o.to },
      { name: 'Call-ID', value: o.callId ?? sipToken(12) },
      { name: 'CSeq', value: `${o.cseq ?? this.#cseq++} ${method}` },
      { name: 'Max-Forwards', value: '70' },
      ...(this.#o.userAgent ? [{ name: 'User-Agent', value: this.#o.userAgent }] : []),
      ...(o.headers ?? []),
    ];
    if (o.body && o.body.length > 0)
      list.push({ name: 'Content-Type', value: o.contentType ?? 'Application/MANSCDP+xml' });
    const request: SipRequest = {
      kind: 'request',
      method,
      uri: o.uri,
      headers: list,
      body: o.body ? Buffer.from(o.body) : Buffer.alloc(0),
    };
    return this.send(request, o.peer, o.timeoutMs);
  }

  /** Runs a client transaction for a request built by the caller (its top Via branch is the key). */
  send(request: SipRequest, peer: SipPeer, timeoutMs?: number): Promise<SipResponse> {
    const via = headers(request, 'via')[0] ?? '';
    const branch = headerParams(via, ';').get('branch') ?? '';
    const key = `${branch}|${request.method}`;
    const bytes = serializeSipMessage(request);
    return new Promise<SipResponse>((resolve, reject) => {
      const limit = timeoutMs ?? this.#o.transactionTimeoutMs ?? 64 * this.#t1;
      const tx: ClientTransaction = {
        resolve,
        reject,
        retransmit: undefined,
        timeout: setTimeout(() => {
          this.#timeouts++;
          this.#settle(
            key,
            tx,
            new CitysenseError(
              'CS_ERR_SIP_TIMEOUT',
              `no final response to ${request.method} ${request.uri} from ${peerKey(peer)} within ${limit} ms`,
              504,
            ),
          );
        }, limit),
      };
      this.#client.set(key, tx);
      if (peer.transport === 'udp') {
        // Timer A (INVITE) doubles without cap; Timer E (others) caps at T2 = 4 s (§17.1.1.2, §17.1.2.2).
        const capMs = request.method === 'INVITE' ? Number.POSITIVE_INFINITY : 4000;
        const again = (interval: number) => {
          tx.retransmit = setTimeout(() => {
            this.#sendBytes(bytes, peer);
            again(Math.min(interval * 2, capMs));
          }, interval);
        };
        again(this.#t1);
      }
      this.#send(bytes, peer).catch((err: unknown) => {
        if (this.#client.get(key) === tx)
          this.#settle(key, tx, err instanceof Error ? err : new Error(String(err)));
      });
    });
  }

  /** Sends a request outside any transaction (ACK of a 2xx, §13.2.2.4). */
  async sendStateless(message: SipMessage, peer: SipPeer): Promise<void> {
    await this.#send(serializeSipMessage(message), peer);
  }

  /** Sends, reporting failures as a coded error. */
  async #send(bytes: Buffer, peer: SipPeer): Promise<void> {
    try {
      await this.transport.send(bytes, peer);
    } catch (err) {
      if (err instanceof CitysenseError) throw err;
      throw new CitysenseError(
        'CS_ERR_SIP_SEND',
        `cannot send to ${peerKey(peer)}: ${errorMessage(err)}`,
        503,
      );
    }
  }

  /** Fire-and-forget send for retransmissions; a failure is logged, the transaction's timer decides. */
  #sendBytes(bytes: Buffer, peer: SipPeer): void {
    this.#send(bytes, peer).catch((err: unknown) =>
      this.#log.debug({ peer: peerKey(peer), err: errorMessage(err) }, 'retransmission failed'),
    );
  }

  /** Answers a refused request with its SIP status when its dialog headers can be read (§8.2). */
  #answerMalformed(error: SipParseError, peer: SipPeer, raw: Buffer): void {
    const response = bestEffortErrorResponse(raw, error);
    if (response) this.#sendBytes(response, peer);
  }
}

function serverKey(request: SipRequest, peer: SipPeer, method = request.method): string {
  const via = headers(request, 'via')[0] ?? '';
  const branch = headerParams(via, ';').get('branch') ?? '';
  // Pre-3261 peers without the cookie are keyed by their Call-ID instead (§17.2.3). The CSeq
  // number is part of the key too: a device that reuses a branch for its next request (seen
  // in the field and in looping test tools) still gets that request handled, not absorbed.
  const id = branch.startsWith(BRANCH_COOKIE) ? branch : `${header(request, 'call-id')}`;
  const seq = /^\s*(\d+)/.exec(header(request, 'cseq') ?? '')?.[1] ?? '';
  return `${id}|${seq}|${method}|${peerKey(peer)}`;
}

/** Fills `received` and `rport` of the top Via with the address the request really came from (RFC 3581 §4). */
function receivedVia(value: string, peer: SipPeer): string {
  const semi = value.indexOf(';');
  if (semi < 0) return `${value};received=${peer.address}`;
  const params = value
    .slice(semi + 1)
    .split(';')
    .filter((p) => !/^received=/i.test(p.trim()))
    .map((p) => (p.trim().toLowerCase() === 'rport' ? `rport=${peer.port}` : p));
  return `${value.slice(0, semi)};${[...params, `received=${peer.address}`].join(';')}`;
}

/** A response to unparseable bytes when the request line and the five dialog headers can be found. */
function bestEffortErrorResponse(raw: Buffer, error: SipParseError): Buffer | undefined {
  const text = raw.subarray(0, Math.min(raw.length, 8192)).toString('latin1');
  const lines = text.split('\r\n');
  if (!/^[A-Za-z]+ \S+ SIP\/2\.0$/.test(lines[0] ?? '') || lines[0]?.startsWith('ACK ')) return undefined;
  const found: SipHeader[] = [];
  for (const name of ['Via', 'From', 'To', 'Call-ID', 'CSeq']) {
    const line = lines.find((l) => {
      const colon = l.indexOf(':');
      return colon > 0 && canonicalHeaderName(l.slice(0, colon).trim()) === name.toLowerCase();
    });
    if (!line) return undefined;
    found.push({ name, value: line.slice(line.indexOf(':') + 1).trim() });
  }
  const reason = error.message.replace(/[\r\n]/g, ' ').slice(0, 100);
  return serializeSipMessage({
    kind: 'response',
    status: error.sipStatus,
    reason: reasonPhrase(error.sipStatus),
    headers: [...found, { name: 'Warning', value: `399 citysense "${reason.replace(/"/g, "'")}"` }],
    body: Buffer.alloc(0),
  });
}
