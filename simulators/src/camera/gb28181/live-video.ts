/**
 * Live-view dialogs of a simulated GB/T 28181 camera (GB/T 28181-2016 §9.2.2): INVITE to a
 * channel is answered 100 then 200 with a PS answer SDP, the ACK starts a `PsRtpSender` to
 * the offered address with the offered SSRC, BYE (from either side) stops it.
 */

import { PsRtpSender } from '@citysense/device-drivers';
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
} from '@citysense/device-drivers/sip';
import {
  buildGbSdp,
  errorMessage,
  type GbMediaDescription,
  type Logger,
  liveSsrc,
  parseGbSdp,
} from '@citysense/protocol';

/** State of a live session: answered (waiting for ACK) or streaming. */
export type LiveSessionState = 'answered' | 'streaming';

/** A live stream the camera serves. */
export interface LiveSession {
  callId: string;
  channelId: string;
  /** SSRC as in `y=` (10 digits). */
  ssrc: string;
  transport: 'udp' | 'tcp';
  /** Where the RTP goes. */
  host: string;
  port: number;
  state: LiveSessionState;
  startedAt: number;
  /** RTP packets sent so far. */
  packetsSent: number;
}

/** Why a live session ended. */
export type LiveSessionEnd = 'bye' | 'stopped' | 'media-failed' | 'no-ack' | 'vanished';

/** Test pattern settings of the stream. */
export interface LiveVideoMedia {
  width?: number | undefined;
  height?: number | undefined;
  frameRate?: number | undefined;
  ffmpegPath?: string | undefined;
}

/** What the dialogs need from the camera. */
export interface LiveVideoOptions {
  endpoint: SipEndpoint;
  /** SIP domain, for SSRCs the camera makes up when the offer has none. */
  domain: string;
  media: LiveVideoMedia;
  t1Ms: number;
  log: Logger;
  /** 'ok' when the channel can stream, 'unknown' (404) or 'off' (480). */
  channelState: (channelId: string) => 'ok' | 'unknown' | 'off';
  onStarted: (session: LiveSession) => void;
  onEnded: (session: LiveSession, reason: LiveSessionEnd) => void;
}

interface Session {
  info: LiveSession;
  /** Our side of the dialog: the INVITE's To with our tag. */
  local: string;
  /** Their side: the INVITE's From (with their tag). */
  remote: string;
  remoteTarget: string;
  peer: SipPeer;
  cseq: number;
  sender: PsRtpSender | undefined;
  retransmit: NodeJS.Timeout | undefined;
}

/** The live sessions of one camera. Constructor assigns only. */
export class LiveVideo {
  readonly #o: LiveVideoOptions;
  readonly #sessions = new Map<string, Session>();
  #ssrcSequence = 0;

  constructor(options: LiveVideoOptions) {
    this.#o = options;
  }

  /** Sessions now, with their packet counts. */
  list(): LiveSession[] {
    return [...this.#sessions.values()].map((s) => ({
      ...s.info,
      packetsSent: s.sender?.stats.packets ?? 0,
    }));
  }

  /** True when a dialog with this Call-ID is live. */
  has(callId: string): boolean {
    return this.#sessions.has(callId);
  }

  /** INVITE: 404 unknown channel, 480 channel off, 488 offer without PS; else 100, then 200 with SDP. */
  async onInvite(request: SipRequest, peer: SipPeer): Promise<void> {
    const { endpoint } = this.#o;
    const callId = header(request, 'call-id') ?? '';
    if (this.#sessions.has(callId))
      return endpoint.respond(request, peer, 491, { reason: 'Request Pending' });
    const channelId = userOf(request.uri) ?? '';
    const state = this.#o.channelState(channelId);
    if (state !== 'ok') return endpoint.respond(request, peer, state === 'unknown' ? 404 : 480);
    let offer: GbMediaDescription;
    try {
      offer = parseGbSdp(request.body.toString('latin1'));
      if (offer.payloadTypes.length === 0) throw new Error('the offer has no PS payload type');
      // The sender connects out; a platform that wants to connect to us (setup:active) is not served.
      if (offer.transport === 'tcp' && offer.setup === 'active')
        throw new Error('a=setup:active is not supported');
    } catch (err) {
      const why = errorMessage(err).replace(/"/g, "'").slice(0, 120);
      return endpoint.respond(request, peer, 488, {
        headers: [{ name: 'Warning', value: `399 citysense "${why}"` }],
      });
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
      local: `${header(request, 'to') ?? ''};tag=${toTag}`,
      remote: from,
      remoteTarget: uriOf(header(request, 'contact') ?? from),
      peer,
      cseq: 0,
      sender: undefined,
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

  /** ACK of the 200: start streaming. */
  async onAck(request: SipRequest): Promise<void> {
    const session = this.#sessions.get(header(request, 'call-id') ?? '');
    if (session?.info.state !== 'answered') return;
    if (session.retransmit) clearTimeout(session.retransmit);
    session.retransmit = undefined;
    session.info.state = 'streaming';
    const { media, log } = this.#o;
    const sender = new PsRtpSender({
      transport: session.info.transport,
      host: session.info.host,
      port: session.info.port,
      ssrc: Number(session.info.ssrc),
      width: media.width,
      height: media.height,
      frameRate: media.frameRate,
      ffmpegPath: media.ffmpegPath,
      logger: log,
    });
    session.sender = sender;
    sender.on('error', (err) => {
      log.warn({ callId: session.info.callId, err: err.message }, 'stream failed; hanging up');
      void this.#hangUp(session, 'media-failed');
    });
    try {
      await sender.start();
    } catch (err) {
      log.warn(
        { callId: session.info.callId, err: errorMessage(err) },
        'cannot start the stream; hanging up',
      );
      await this.#hangUp(session, 'media-failed');
      return;
    }
    if (this.#sessions.get(session.info.callId) === session) this.#o.onStarted({ ...session.info });
  }

  /** BYE from the platform: 200 and stop, or 481 for an unknown dialog. */
  async onBye(request: SipRequest, peer: SipPeer): Promise<void> {
    const session = this.#sessions.get(header(request, 'call-id') ?? '');
    if (!session) return this.#o.endpoint.respond(request, peer, 481);
    await this.#o.endpoint.respond(request, peer, 200);
    await this.#end(session, 'bye');
  }

  /** Ends every session; `bye` says whether the platform is told (a vanished camera says nothing). */
  async endAll(reason: LiveSessionEnd, bye: boolean): Promise<void> {
    await Promise.all(
      [...this.#sessions.values()].map((s) => (bye ? this.#hangUp(s, reason) : this.#end(s, reason))),
    );
  }

  /** Hangs up from the camera's side: BYE in the dialog and stop; never rejects. */
  async #hangUp(session: Session, reason: LiveSessionEnd): Promise<void> {
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

  async #end(session: Session, reason: LiveSessionEnd): Promise<void> {
    if (this.#sessions.get(session.info.callId) !== session) return;
    this.#sessions.delete(session.info.callId);
    if (session.retransmit) clearTimeout(session.retransmit);
    const info = { ...session.info, packetsSent: session.sender?.stats.packets ?? 0 };
    try {
      await session.sender?.stop();
    } catch (err) {
      this.#o.log.warn({ err: errorMessage(err) }, 'stream did not stop cleanly');
    }
    this.#o.onEnded(info, reason);
  }
}
