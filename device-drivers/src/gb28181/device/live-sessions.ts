/**
 * Live-view dialogs of a device (GB/T 28181-2016 §9.2.2): INVITE to a channel is answered
 * 100 then 200 with a `sendonly` PS answer SDP, the ACK starts the media through the
 * `LiveMediaHandler`, BYE (from either side) stops it. Without a handler the device serves no
 * media and answers 488 Not Acceptable Here with a Warning, after the 404/480 channel checks.
 */
import {
  buildGbSdp,
  errorMessage,
  type GbMediaDescription,
  type Logger,
  liveSsrc,
  parseGbSdp,
} from '@citysense/protocol';
import {
  header,
  type ResponseOptions,
  type SipEndpoint,
  type SipPeer,
  type SipRequest,
  type SipResponse,
  sipToken,
  uriOf,
  userOf,
} from '../sip/index.ts';
import type { LiveMediaHandle, LiveMediaHandler } from './live-media.ts';
import { warning } from './queries.ts';

/** State of a live session: answered (waiting for ACK) or streaming. */
export type GbLiveSessionState = 'answered' | 'streaming';

/** A live stream the device serves. */
export interface GbLiveSession {
  callId: string;
  channelId: string;
  /** SSRC as in `y=` (10 digits). */
  ssrc: string;
  transport: 'udp' | 'tcp';
  /** Where the RTP goes. */
  host: string;
  port: number;
  state: GbLiveSessionState;
  startedAt: number;
  /** RTP packets sent so far (0 when the handler does not count). */
  packetsSent: number;
}

/** Why a live session ended: the stream finished by itself (`media-ended`) or failed (`media-failed`). */
export type GbLiveSessionEnd = 'bye' | 'stopped' | 'media-failed' | 'media-ended' | 'no-ack' | 'vanished';

/** What the dialogs need from the device. */
export interface LiveSessionsOptions {
  endpoint: SipEndpoint;
  /** SIP domain, for SSRCs the device makes up when the offer has none. */
  domain: string;
  handler: LiveMediaHandler | undefined;
  t1Ms: number;
  log: Logger;
  /** 'ok' when the channel can stream, 'unknown' (404) or 'off' (480). */
  channelState: (channelId: string) => 'ok' | 'unknown' | 'off';
  onStarted: (session: GbLiveSession) => void;
  onEnded: (session: GbLiveSession, reason: GbLiveSessionEnd) => void;
}

interface Session {
  info: GbLiveSession;
  offer: GbMediaDescription;
  /** Our side of the dialog: the INVITE's To with our tag. */
  local: string;
  /** Their side: the INVITE's From (with their tag). */
  remote: string;
  remoteTarget: string;
  peer: SipPeer;
  cseq: number;
  media: LiveMediaHandle | undefined;
  abort: AbortController;
  retransmit: NodeJS.Timeout | undefined;
}

/** The live sessions of one device. Constructor assigns only. */
export class LiveSessions {
  readonly #o: LiveSessionsOptions;
  readonly #sessions = new Map<string, Session>();
  #ssrcSequence = 0;

  constructor(options: LiveSessionsOptions) {
    this.#o = options;
  }

  /** Sessions now, with their packet counts. */
  list(): GbLiveSession[] {
    return [...this.#sessions.values()].map((s) => ({ ...s.info, packetsSent: packetsOf(s) }));
  }

  /** True when a dialog with this Call-ID is live. */
  has(callId: string): boolean {
    return this.#sessions.has(callId);
  }

  /** INVITE: 404 unknown channel, 480 channel off, 488 no media handler or an offer without PS; else 100, then 200 with SDP. */
  async onInvite(request: SipRequest, peer: SipPeer): Promise<void> {
    const { endpoint } = this.#o;
    const callId = header(request, 'call-id') ?? '';
    if (this.#sessions.has(callId))
      return endpoint.respond(request, peer, 491, { reason: 'Request Pending' });
    const channelId = userOf(request.uri) ?? '';
    const state = this.#o.channelState(channelId);
    if (state !== 'ok') return endpoint.respond(request, peer, state === 'unknown' ? 404 : 480);
    if (!this.#o.handler)
      return endpoint.respond(request, peer, 488, {
        headers: [{ name: 'Warning', value: warning('this device serves no live media') }],
      });
    let offer: GbMediaDescription;
    try {
      offer = parseGbSdp(request.body.toString('latin1'));
      if (offer.payloadTypes.length === 0) throw new Error('the offer has no PS payload type');
      // The device connects out; a platform that wants to connect to us (setup:active) is not served.
      if (offer.transport === 'tcp' && offer.setup === 'active')
        throw new Error('a=setup:active is not supported');
    } catch (err) {
      return endpoint.respond(request, peer, 488, { headers: [{ name: 'Warning', value: warning(err) }] });
    }
    await endpoint.respond(request, peer, 100);
    const ssrc = offer.ssrc ?? liveSsrc(this.#o.domain, ++this.#ssrcSequence);
    const toTag = sipToken(4);
    const sdp = buildGbSdp({
      user: channelId,
      host: endpoint.address,
      port: 9,
      transport: offer.transport,
      direction: 'sendonly',
      payloadType: offer.payloadTypes[0] ?? 96,
      ssrc,
      sessionName: offer.sessionName,
    });
    const answer: ResponseOptions = {
      toTag,
      body: Buffer.from(sdp, 'latin1'),
      contentType: 'application/sdp',
      headers: [{ name: 'Contact', value: endpoint.contact(channelId, peer) }],
    };
    const from = header(request, 'from') ?? '';
    const session: Session = {
      info: {
        callId,
        channelId,
        ssrc,
        transport: offer.transport,
        host: offer.host,
        port: offer.port,
        state: 'answered',
        startedAt: Date.now(),
        packetsSent: 0,
      },
      offer,
      local: `${header(request, 'to') ?? ''};tag=${toTag}`,
      remote: from,
      remoteTarget: uriOf(header(request, 'contact') ?? from),
      peer,
      cseq: 0,
      media: undefined,
      abort: new AbortController(),
      retransmit: undefined,
    };
    this.#sessions.set(callId, session);
    await endpoint.respond(request, peer, 200, answer);
    if (peer.transport === 'udp')
      this.#retransmitOk(session, endpoint.buildResponse(request, 200, answer, peer));
  }

  /** Over UDP the UAS core resends its 2xx until the ACK arrives, then gives up (RFC 3261 §13.3.1.4). */
  #retransmitOk(session: Session, ok: SipResponse): void {
    const { endpoint, t1Ms, log } = this.#o;
    const deadline = Date.now() + 64 * t1Ms;
    const again = (interval: number): void => {
      session.retransmit = setTimeout(() => {
        session.retransmit = undefined;
        if (session.info.state !== 'answered' || this.#sessions.get(session.info.callId) !== session) return;
        if (Date.now() >= deadline) {
          log.warn({ callId: session.info.callId }, 'no ACK for the 200 to INVITE; ending the session');
          void this.#hangUp(session, 'no-ack');
          return;
        }
        endpoint
          .sendStateless(ok, session.peer)
          .catch((err: unknown) => log.debug({ err: errorMessage(err) }, '200 retransmission failed'));
        again(Math.min(interval * 2, 4000));
      }, interval);
    };
    again(t1Ms);
  }

  /** ACK of the 200: start the media. */
  async onAck(request: SipRequest): Promise<void> {
    const session = this.#sessions.get(header(request, 'call-id') ?? '');
    if (session?.info.state !== 'answered' || !this.#o.handler) return;
    if (session.retransmit) clearTimeout(session.retransmit);
    session.retransmit = undefined;
    session.info.state = 'streaming';
    const { log } = this.#o;
    const { callId, channelId, ssrc } = session.info;
    let media: LiveMediaHandle;
    try {
      media = await this.#o.handler.start({
        callId,
        channelId,
        offer: session.offer,
        ssrc,
        signal: session.abort.signal,
      });
    } catch (err) {
      log.warn({ callId, err: errorMessage(err) }, 'cannot start the stream; hanging up');
      await this.#hangUp(session, 'media-failed');
      return;
    }
    if (this.#sessions.get(callId) !== session) {
      // The dialog ended while the media was starting.
      await stopQuietly(media, log);
      return;
    }
    session.media = media;
    media.ended.then(
      (err) => {
        if (err) log.warn({ callId, err: err.message }, 'stream failed; hanging up');
        void this.#hangUp(session, err ? 'media-failed' : 'media-ended');
      },
      (err: unknown) => {
        log.warn({ callId, err: errorMessage(err) }, 'stream failed; hanging up');
        void this.#hangUp(session, 'media-failed');
      },
    );
    this.#o.onStarted({ ...session.info });
  }

  /** BYE from the platform: 200 and stop, or 481 for an unknown dialog. */
  async onBye(request: SipRequest, peer: SipPeer): Promise<void> {
    const session = this.#sessions.get(header(request, 'call-id') ?? '');
    if (!session) return this.#o.endpoint.respond(request, peer, 481);
    await this.#o.endpoint.respond(request, peer, 200);
    await this.#end(session, 'bye');
  }

  /** Ends every session; `bye` says whether the platform is told (a vanished device says nothing). */
  async endAll(reason: GbLiveSessionEnd, bye: boolean): Promise<void> {
    await Promise.all(
      [...this.#sessions.values()].map((s) => (bye ? this.#hangUp(s, reason) : this.#end(s, reason))),
    );
  }

  /** Hangs up from the device's side: BYE in the dialog and stop; never rejects. */
  async #hangUp(session: Session, reason: GbLiveSessionEnd): Promise<void> {
    if (this.#sessions.get(session.info.callId) !== session) return;
    const ended = this.#end(session, reason);
    const bye = this.#o.endpoint
      .request({
        method: 'BYE',
        uri: session.remoteTarget,
        peer: session.peer,
        from: session.local,
        to: session.remote,
        callId: session.info.callId,
        cseq: ++session.cseq,
        timeoutMs: 2000,
      })
      .then(
        () => undefined,
        (err: unknown) => this.#o.log.debug({ err: errorMessage(err) }, 'BYE not answered'),
      );
    await Promise.all([ended, bye]);
  }

  async #end(session: Session, reason: GbLiveSessionEnd): Promise<void> {
    if (this.#sessions.get(session.info.callId) !== session) return;
    this.#sessions.delete(session.info.callId);
    if (session.retransmit) clearTimeout(session.retransmit);
    session.abort.abort();
    const info = { ...session.info, packetsSent: packetsOf(session) };
    if (session.media) await stopQuietly(session.media, this.#o.log);
    this.#o.onEnded(info, reason);
  }
}

function packetsOf(session: Session): number {
  return session.media?.packetsSent?.() ?? 0;
}

async function stopQuietly(media: LiveMediaHandle, log: Logger): Promise<void> {
  try {
    await media.stop();
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'stream did not stop cleanly');
  }
}
