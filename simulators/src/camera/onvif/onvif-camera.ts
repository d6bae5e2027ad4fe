/**
 * A simulated ONVIF Profile S/M camera on local ports: the device, media and event
 * services (SOAP 1.2 over HTTP, WS-UsernameToken), WS-Discovery on UDP, a JPEG
 * snapshot, an H.264 RTSP stream, pull-point motion and tamper events, and Profile M
 * analytics metadata documents. Real ONVIF clients (the `onvif` npm package, NVRs)
 * talk to it as they talk to a street camera.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import sharp from 'sharp';
import {
  type MetadataNormalisation,
  metadataDocument,
  type SimulatedAnalyticsObject,
} from './metadata-stream.ts';
import { H264RtspServer } from './rtsp-server.ts';
import {
  envelope,
  FAULTS,
  faultEnvelope,
  parseDurationMs,
  parseSoapRequest,
  type SoapFault,
  type SoapRequest,
  textOf,
  UsernameTokenVerifier,
  xmlEscape,
} from './soap.ts';
import { WS_DISCOVERY_MULTICAST, WsDiscoveryResponder } from './ws-discovery-responder.ts';

/** Options of a simulated ONVIF camera. */
export interface OnvifCameraOptions {
  /** WS-UsernameToken credentials; default admin / admin. */
  username?: string;
  password?: string;
  /** Bind address of the HTTP and RTSP servers (an IP literal); default 127.0.0.1. */
  host?: string;
  /** HTTP port of the ONVIF services; default 0 (any free port). */
  port?: number;
  /** RTSP port; default 0. */
  rtspPort?: number;
  /**
   * WS-Discovery responder: default the multicast group 239.255.255.250:3702; tests pass
   * a unicast address and port 0. `false` turns discovery off.
   */
  discovery?: false | { address?: string; port?: number };
  /** Video size and rate of the stream, snapshot and profile; default 320×240 at 10 fps. */
  width?: number;
  height?: number;
  fps?: number;
  /** JPEG served as the snapshot (fitted to the frame size); default a generated test card. */
  snapshotImage?: string;
  /** How far `Created` of a UsernameToken may be from the camera clock, ms; default 120 000. */
  authWindowMs?: number;
  /** ffmpeg that encodes the RTSP stream; default the bundled one or `ffmpeg` on PATH. */
  ffmpegPath?: string;
  /** Objects the analytics "sees", served as Profile M metadata; default one person. */
  analyticsObjects?: SimulatedAnalyticsObject[];
  /** Device information. */
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  logger?: Logger;
}

/** Event topics the camera raises (ONVIF Core Annex, Analytics §A). */
export const ONVIF_TOPICS = {
  motion: 'tns1:RuleEngine/CellMotionDetector/Motion',
  tamper: 'tns1:VideoSource/GlobalSceneChange/ImagingService',
} as const;

const PROFILE_TOKEN = 'profile_1';
const VIDEO_SOURCE_TOKEN = 'vs_1';
const VIDEO_SOURCE_CONFIG_TOKEN = 'vsc_1';
const MAX_BODY_BYTES = 256 * 1024;
const MAX_QUEUED_MESSAGES = 1000;
const MAX_SUBSCRIPTIONS = 64;
const DEFAULT_TERMINATION_MS = 60_000;
const MAX_PULL_TIMEOUT_MS = 10 * 60_000;

interface Notification {
  topic: string;
  utcTime: string;
  operation: 'Initialized' | 'Changed';
  source: Array<[string, string]>;
  data: [string, string];
}

interface PullPoint {
  id: string;
  terminationMs: number;
  queue: Notification[];
  /** Releases the pending long poll with the queued messages. */
  wake: (() => void) | undefined;
  /** Releases the pending long poll empty-handed. */
  cancel: (() => void) | undefined;
}

/** What a SOAP request is answered with. */
type Answer = { body: string } | { fault: SoapFault };

const DEFAULT_OBJECTS: SimulatedAnalyticsObject[] = [
  {
    objectId: 1,
    classes: [{ type: 'Human', likelihood: 0.87 }],
    box: { left: 0.25, top: 0.2, right: 0.5, bottom: 0.9 },
  },
];

/** An ONVIF camera on local ports. */
export class OnvifCamera {
  readonly #o: OnvifCameraOptions;
  readonly #log: Logger;
  readonly #endpoint = `urn:uuid:${randomUUID()}`;
  #server: Server | undefined;
  #rtsp: H264RtspServer | undefined;
  #discovery: WsDiscoveryResponder | undefined;
  #verifier: UsernameTokenVerifier | undefined;
  #snapshot: Buffer | undefined;
  #starting: Promise<void> | undefined;
  readonly #pullPoints = new Map<string, PullPoint>();
  #motion = false;
  #tamper = false;
  #objects: SimulatedAnalyticsObject[] | undefined;
  #requests = 0;
  #faults = 0;

  constructor(options: OnvifCameraOptions = {}) {
    this.#o = options;
    this.#log = componentLogger('onvif-camera', options.logger);
  }

  /** `urn:uuid:…` endpoint reference the camera announces in WS-Discovery. */
  get endpointReference(): string {
    return this.#endpoint;
  }

  /** Device service URL (the WS-Discovery XAddr), once started. */
  get deviceServiceUrl(): string {
    return `${this.#base()}/onvif/device_service`;
  }

  /** Snapshot URL (HTTP JPEG), once started. */
  get snapshotUrl(): string {
    return `${this.#base()}/onvif/snapshot.jpg`;
  }

  /** URL of the latest Profile M metadata document (HTTP GET, `application/xml`), once started. */
  get metadataUrl(): string {
    return `${this.#base()}/onvif/metadata.xml`;
  }

  /** RTSP URL of the H.264 stream, once started. */
  get streamUrl(): string {
    if (!this.#rtsp) throw new Error('camera is not started');
    return this.#rtsp.url;
  }

  /** HTTP port of the ONVIF services, once started. */
  get port(): number {
    return this.#address().port;
  }

  /** UDP port of the WS-Discovery responder; 0 when discovery is off or not started. */
  get discoveryPort(): number {
    return this.#discovery?.port ?? 0;
  }

  /** Counters a test can check: SOAP requests served and faults answered. */
  get stats(): { requests: number; faults: number; subscriptions: number } {
    return { requests: this.#requests, faults: this.#faults, subscriptions: this.#pullPoints.size };
  }

  /** Starts the services; idempotent (concurrent calls share one start). */
  start(): Promise<void> {
    if (this.#server) return Promise.resolve();
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    const host = this.#o.host ?? '127.0.0.1';
    this.#verifier = new UsernameTokenVerifier(
      { username: this.#o.username ?? 'admin', password: this.#o.password ?? 'admin' },
      this.#o.authWindowMs ?? 120_000,
    );
    this.#snapshot = await this.#loadSnapshot();
    const server = createServer((req, res) => this.#serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    const rtsp = new H264RtspServer({
      host,
      port: this.#o.rtspPort ?? 0,
      path: `/onvif/${PROFILE_TOKEN}`,
      width: this.#o.width ?? 320,
      height: this.#o.height ?? 240,
      fps: this.#o.fps ?? 10,
      ffmpegPath: () => resolveFfmpeg(this.#o.ffmpegPath),
      log: this.#log,
    });
    try {
      await rtsp.start();
      this.#rtsp = rtsp;
      if (this.#o.discovery !== false) {
        const discovery = new WsDiscoveryResponder({
          address: this.#o.discovery?.address ?? WS_DISCOVERY_MULTICAST.address,
          port: this.#o.discovery?.port ?? WS_DISCOVERY_MULTICAST.port,
          endpoint: this.#endpoint,
          xaddrs: () => this.deviceServiceUrl,
          scopes: this.#scopes(),
          log: this.#log,
        });
        await discovery.start();
        this.#discovery = discovery;
      }
    } catch (err) {
      await this.stop();
      throw new CitysenseError(
        'CS_ERR_CAMERA_BIND',
        `the simulated ONVIF camera could not bind its ports: ${errorMessage(err)}`,
      );
    }
    this.#log.info(
      { device: this.deviceServiceUrl, stream: this.streamUrl, discoveryPort: this.discoveryPort },
      'simulated ONVIF camera up',
    );
  }

  /** Closes every service and connection; idempotent. */
  async stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    const server = this.#server;
    this.#server = undefined;
    for (const p of this.#pullPoints.values()) p.cancel?.();
    this.#pullPoints.clear();
    await this.#discovery?.stop();
    this.#discovery = undefined;
    await this.#rtsp?.stop();
    this.#rtsp = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Sets the motion state and notifies every pull point (`IsMotion`). */
  raiseMotion(on: boolean): void {
    this.#motion = on;
    this.#notify(this.#motionMessage('Changed'));
  }

  /** Sets the tamper (global scene change) state and notifies every pull point (`State`). */
  raiseTamper(on: boolean): void {
    this.#tamper = on;
    this.#notify(this.#tamperMessage('Changed'));
  }

  /**
   * Changes what the analytics "sees" from now on: the next metadata document (at
   * `metadataUrl` and from `metadataDocument()`) reports these objects.
   */
  setAnalyticsObjects(objects: SimulatedAnalyticsObject[]): void {
    this.#objects = objects.map((o) => ({ ...o, classes: [...o.classes], box: { ...o.box } }));
  }

  /** A Profile M `tt:MetadataStream` document of the analytics scene (or of `objects`). */
  metadataDocument(
    options: {
      normalisation?: MetadataNormalisation;
      objects?: SimulatedAnalyticsObject[];
      utcTime?: Date;
    } = {},
  ): string {
    return metadataDocument({
      objects: options.objects ?? this.#objects ?? this.#o.analyticsObjects ?? DEFAULT_OBJECTS,
      normalisation: options.normalisation ?? 'signed',
      ...(options.utcTime ? { utcTime: options.utcTime } : {}),
    });
  }

  #address(): AddressInfo {
    const address = this.#server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('camera is not started');
    return address;
  }

  #base(): string {
    return `http://${this.#o.host ?? '127.0.0.1'}:${this.#address().port}`;
  }

  #scopes(): string[] {
    return [
      'onvif://www.onvif.org/type/video_encoder',
      'onvif://www.onvif.org/Profile/Streaming',
      'onvif://www.onvif.org/Profile/M',
      `onvif://www.onvif.org/hardware/${encodeURIComponent(this.#o.model ?? 'SimCam')}`,
      'onvif://www.onvif.org/name/citysense-sim',
    ];
  }

  async #loadSnapshot(): Promise<Buffer> {
    const width = this.#o.width ?? 320;
    const height = this.#o.height ?? 240;
    try {
      const image = this.#o.snapshotImage
        ? sharp(await readFile(this.#o.snapshotImage)).resize(width, height, { fit: 'contain' })
        : sharp({ create: { width, height, channels: 3, background: { r: 32, g: 96, b: 160 } } });
      return await image.jpeg({ quality: 80 }).toBuffer();
    } catch (err) {
      throw new CitysenseError(
        'CS_ERR_CAMERA_SCENE',
        `${this.#o.snapshotImage ?? 'snapshot'} is not a readable image: ${errorMessage(err)}`,
        400,
      );
    }
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && path === '/onvif/snapshot.jpg' && this.#snapshot) {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': this.#snapshot.length });
      res.end(this.#snapshot);
      return;
    }
    if (req.method === 'GET' && path === '/onvif/metadata.xml') {
      res.writeHead(200, { 'content-type': 'application/xml; charset=utf-8' }).end(this.metadataDocument());
      return;
    }
    if (req.method !== 'POST' || !path.startsWith('/onvif/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such service\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        this.#send(res, { fault: FAULTS.invalidArg('request body too large') });
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      this.#requests++;
      const request = parseSoapRequest(Buffer.concat(chunks).toString('utf8'));
      if (!request) {
        this.#send(res, { fault: FAULTS.wellFormed() });
        return;
      }
      // A long poll ends early when its client goes away.
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      Promise.resolve()
        .then(() => this.#answer(path, request, gone.signal))
        .then(
          (answer) => this.#send(res, answer),
          (err: unknown) => {
            this.#log.error({ err, action: request.action }, 'ONVIF handler failed');
            this.#send(res, {
              fault: { status: 500, code: 'Receiver', subcode: 'ter:Action', reason: 'internal error' },
            });
          },
        );
    });
  }

  #send(res: ServerResponse, answer: Answer): void {
    if ('fault' in answer) this.#faults++;
    if (res.writableEnded || res.destroyed) return;
    const status = 'fault' in answer ? answer.fault.status : 200;
    const xml = 'fault' in answer ? faultEnvelope(answer.fault) : envelope(answer.body);
    res.writeHead(status, { 'content-type': 'application/soap+xml; charset=utf-8' }).end(xml);
  }

  /** The answer to one SOAP request; everything but GetSystemDateAndTime needs a UsernameToken. */
  #answer(path: string, request: SoapRequest, gone: AbortSignal): Answer | Promise<Answer> {
    const { action } = request;
    // ONVIF Core §5.9.4.3: GetSystemDateAndTime is PRE_AUTH, so clients can sync `Created`.
    if (action === 'GetSystemDateAndTime') return { body: this.#systemDateAndTime() };
    const denied = this.#verifier?.verify(request.header);
    if (denied) return { fault: denied };
    const pullPointId = /^\/onvif\/pullpoint\/([0-9a-f-]{36})$/.exec(path)?.[1];
    switch (action) {
      case 'GetCapabilities':
        return { body: this.#capabilities() };
      case 'GetServices':
        return { body: this.#services() };
      case 'GetDeviceInformation':
        return {
          body:
            '<tds:GetDeviceInformationResponse>' +
            `<tds:Manufacturer>${xmlEscape(this.#o.manufacturer ?? 'citysense')}</tds:Manufacturer>` +
            `<tds:Model>${xmlEscape(this.#o.model ?? 'SimCam')}</tds:Model>` +
            '<tds:FirmwareVersion>1.0.0-sim</tds:FirmwareVersion>' +
            `<tds:SerialNumber>${xmlEscape(this.#o.serialNumber ?? 'SIM-0001')}</tds:SerialNumber>` +
            '<tds:HardwareId>sim-hw-1</tds:HardwareId>' +
            '</tds:GetDeviceInformationResponse>',
        };
      case 'GetScopes': {
        const scopes = this.#scopes().map(
          (s) =>
            `<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>${xmlEscape(s)}</tt:ScopeItem></tds:Scopes>`,
        );
        return { body: `<tds:GetScopesResponse>${scopes.join('')}</tds:GetScopesResponse>` };
      }
      case 'GetHostname':
        return {
          body:
            '<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP>' +
            '<tt:Name>citysense-sim</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>',
        };
      case 'GetProfiles':
        return {
          body: `<trt:GetProfilesResponse>${this.#profile('trt:Profiles')}</trt:GetProfilesResponse>`,
        };
      case 'GetProfile':
        return { body: `<trt:GetProfileResponse>${this.#profile('trt:Profile')}</trt:GetProfileResponse>` };
      case 'GetVideoSources':
        return {
          body:
            `<trt:GetVideoSourcesResponse><trt:VideoSources token="${VIDEO_SOURCE_TOKEN}">` +
            `<tt:Framerate>${this.#o.fps ?? 10}</tt:Framerate>${this.#resolution()}` +
            '</trt:VideoSources></trt:GetVideoSourcesResponse>',
        };
      case 'GetStreamUri':
        return this.#uriResponse(request, 'GetStreamUriResponse', this.streamUrl);
      case 'GetSnapshotUri':
        return this.#uriResponse(request, 'GetSnapshotUriResponse', this.snapshotUrl);
      case 'GetEventProperties':
        return { body: this.#eventProperties() };
      case 'CreatePullPointSubscription':
        return this.#createPullPoint(request);
      case 'PullMessages':
        return this.#pullMessages(request, pullPointId, gone);
      case 'Renew':
        return this.#renew(request, pullPointId);
      case 'Unsubscribe': {
        const point = this.#livePullPoint(pullPointId);
        if (!point) return { fault: FAULTS.resourceUnknown() };
        point.cancel?.();
        this.#pullPoints.delete(point.id);
        return { body: '<wsnt:UnsubscribeResponse/>' };
      }
      default:
        return { fault: FAULTS.actionNotSupported(action) };
    }
  }

  #systemDateAndTime(): string {
    const now = new Date();
    return (
      '<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>' +
      '<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>' +
      '<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime>' +
      `<tt:Time><tt:Hour>${now.getUTCHours()}</tt:Hour><tt:Minute>${now.getUTCMinutes()}</tt:Minute><tt:Second>${now.getUTCSeconds()}</tt:Second></tt:Time>` +
      `<tt:Date><tt:Year>${now.getUTCFullYear()}</tt:Year><tt:Month>${now.getUTCMonth() + 1}</tt:Month><tt:Day>${now.getUTCDate()}</tt:Day></tt:Date>` +
      '</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>'
    );
  }

  #capabilities(): string {
    const base = this.#base();
    return (
      '<tds:GetCapabilitiesResponse><tds:Capabilities>' +
      `<tt:Device><tt:XAddr>${base}/onvif/device_service</tt:XAddr></tt:Device>` +
      `<tt:Events><tt:XAddr>${base}/onvif/events_service</tt:XAddr><tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>` +
      '<tt:WSPullPointSupport>true</tt:WSPullPointSupport><tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>' +
      `<tt:Media><tt:XAddr>${base}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>` +
      '<tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>' +
      '</tds:Capabilities></tds:GetCapabilitiesResponse>'
    );
  }

  #services(): string {
    const base = this.#base();
    const service = (ns: string, path: string) =>
      `<tds:Service><tds:Namespace>${ns}</tds:Namespace><tds:XAddr>${base}${path}</tds:XAddr>` +
      '<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>';
    return (
      '<tds:GetServicesResponse>' +
      service('http://www.onvif.org/ver10/device/wsdl', '/onvif/device_service') +
      service('http://www.onvif.org/ver10/media/wsdl', '/onvif/media_service') +
      service('http://www.onvif.org/ver10/events/wsdl', '/onvif/events_service') +
      '</tds:GetServicesResponse>'
    );
  }

  #resolution(): string {
    return `<tt:Resolution><tt:Width>${this.#o.width ?? 320}</tt:Width><tt:Height>${this.#o.height ?? 240}</tt:Height></tt:Resolution>`;
  }

  #profile(element: string): string {
    const fps = this.#o.fps ?? 10;
    return (
      `<${element} token="${PROFILE_TOKEN}" fixed="true"><tt:Name>MainStream</tt:Name>` +
      `<tt:VideoSourceConfiguration token="${VIDEO_SOURCE_CONFIG_TOKEN}"><tt:Name>VideoSource</tt:Name><tt:UseCount>1</tt:UseCount>` +
      `<tt:SourceToken>${VIDEO_SOURCE_TOKEN}</tt:SourceToken><tt:Bounds x="0" y="0" width="${this.#o.width ?? 320}" height="${this.#o.height ?? 240}"/></tt:VideoSourceConfiguration>` +
      '<tt:VideoEncoderConfiguration token="vec_1"><tt:Name>H264Main</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>' +
      `${this.#resolution()}<tt:Quality>5</tt:Quality><tt:RateControl><tt:FrameRateLimit>${fps}</tt:FrameRateLimit>` +
      '<tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>1024</tt:BitrateLimit></tt:RateControl>' +
      `<tt:H264><tt:GovLength>${fps}</tt:GovLength><tt:H264Profile>Baseline</tt:H264Profile></tt:H264>` +
      '<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>' +
      '<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration>' +
      '<tt:MetadataConfiguration token="meta_1"><tt:Name>Analytics</tt:Name><tt:UseCount>1</tt:UseCount>' +
      '<tt:Analytics>true</tt:Analytics><tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:MetadataConfiguration>' +
      `</${element}>`
    );
  }

  #uriResponse(request: SoapRequest, response: string, uri: string): Answer {
    const token = textOf(request.body, 'ProfileToken');
    if (token !== undefined && token !== PROFILE_TOKEN)
      return { fault: FAULTS.invalidArg(`no profile ${token.slice(0, 64)}`) };
    return {
      body:
        `<trt:${response}><trt:MediaUri><tt:Uri>${xmlEscape(uri)}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>` +
        `<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:${response}>`,
    };
  }

  #eventProperties(): string {
    return (
      '<tev:GetEventPropertiesResponse>' +
      '<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml</tev:TopicNamespaceLocation>' +
      '<wsnt:FixedTopicSet>true</wsnt:FixedTopicSet><wstop:TopicSet>' +
      '<tns1:RuleEngine><tns1:CellMotionDetector><tns1:Motion wstop:topic="true"><tt:MessageDescription IsProperty="true">' +
      '<tt:Data><tt:SimpleItemDescription Name="IsMotion" Type="xs:boolean"/></tt:Data></tt:MessageDescription>' +
      '</tns1:Motion></tns1:CellMotionDetector></tns1:RuleEngine>' +
      '<tns1:VideoSource><tns1:GlobalSceneChange><tns1:ImagingService wstop:topic="true"><tt:MessageDescription IsProperty="true">' +
      '<tt:Data><tt:SimpleItemDescription Name="State" Type="xs:boolean"/></tt:Data></tt:MessageDescription>' +
      '</tns1:ImagingService></tns1:GlobalSceneChange></tns1:VideoSource>' +
      '</wstop:TopicSet>' +
      '<wsnt:TopicExpressionDialect>http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet</wsnt:TopicExpressionDialect>' +
      '<tev:MessageContentFilterDialect>http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter</tev:MessageContentFilterDialect>' +
      '<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd</tev:MessageContentSchemaLocation>' +
      '</tev:GetEventPropertiesResponse>'
    );
  }

  #createPullPoint(request: SoapRequest): Answer {
    this.#expire();
    if (this.#pullPoints.size >= MAX_SUBSCRIPTIONS)
      return {
        fault: {
          status: 400,
          code: 'Receiver',
          subcode: 'ter:MaxNotificationProducers',
          reason: 'too many subscriptions',
        },
      };
    const now = Date.now();
    const point: PullPoint = {
      id: randomUUID(),
      terminationMs: now + terminationFrom(textOf(request.body, 'InitialTerminationTime'), now),
      // Properties start with their current state (ONVIF Core §9.1.2 "Initialized").
      queue: [this.#motionMessage('Initialized'), this.#tamperMessage('Initialized')],
      wake: undefined,
      cancel: undefined,
    };
    this.#pullPoints.set(point.id, point);
    return {
      body:
        '<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>' +
        `<wsa:Address>${this.#base()}/onvif/pullpoint/${point.id}</wsa:Address></tev:SubscriptionReference>` +
        `<wsnt:CurrentTime>${new Date(now).toISOString()}</wsnt:CurrentTime>` +
        `<wsnt:TerminationTime>${new Date(point.terminationMs).toISOString()}</wsnt:TerminationTime>` +
        '</tev:CreatePullPointSubscriptionResponse>',
    };
  }

  #livePullPoint(id: string | undefined): PullPoint | undefined {
    this.#expire();
    return id ? this.#pullPoints.get(id) : undefined;
  }

  #renew(request: SoapRequest, id: string | undefined): Answer {
    const point = this.#livePullPoint(id);
    if (!point) return { fault: FAULTS.resourceUnknown() };
    const now = Date.now();
    point.terminationMs = now + terminationFrom(textOf(request.body, 'TerminationTime'), now);
    return {
      body:
        `<wsnt:RenewResponse><wsnt:TerminationTime>${new Date(point.terminationMs).toISOString()}</wsnt:TerminationTime>` +
        `<wsnt:CurrentTime>${new Date(now).toISOString()}</wsnt:CurrentTime></wsnt:RenewResponse>`,
    };
  }

  /**
   * Long poll (ONVIF Core §9.1.3): answers at once when messages are queued, else when
   * one arrives or Timeout passes. Messages leave the queue only in an answer that is sent.
   */
  async #pullMessages(request: SoapRequest, id: string | undefined, gone: AbortSignal): Promise<Answer> {
    const point = this.#livePullPoint(id);
    if (!point) return { fault: FAULTS.resourceUnknown() };
    const timeoutMs = Math.min(
      parseDurationMs(textOf(request.body, 'Timeout')) ?? 10_000,
      MAX_PULL_TIMEOUT_MS,
    );
    const limit = Math.max(1, Math.min(Number(textOf(request.body, 'MessageLimit') ?? 10) || 10, 1000));
    if (point.queue.length === 0) {
      // A second concurrent pull on the same subscription releases the first, empty-handed.
      point.cancel?.();
      const woken = await new Promise<boolean>((resolve) => {
        const settle = (wake: boolean) => {
          clearTimeout(timer);
          gone.removeEventListener('abort', onGone);
          if (point.wake === onWake) point.wake = undefined;
          if (point.cancel === onCancel) point.cancel = undefined;
          resolve(wake);
        };
        const onWake = () => settle(true);
        const onCancel = () => settle(false);
        const onGone = () => settle(false);
        const timer = setTimeout(onWake, timeoutMs);
        point.wake = onWake;
        point.cancel = onCancel;
        gone.addEventListener('abort', onGone, { once: true });
      });
      if (!woken) return pullResponse(point, []);
    }
    return pullResponse(point, point.queue.splice(0, limit));
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, p] of this.#pullPoints)
      if (p.terminationMs < now) {
        p.cancel?.();
        this.#pullPoints.delete(id);
      }
  }

  #notify(message: Notification): void {
    for (const point of this.#pullPoints.values()) {
      point.queue.push(message);
      if (point.queue.length > MAX_QUEUED_MESSAGES) point.queue.shift();
      point.wake?.();
    }
  }

  #motionMessage(operation: Notification['operation']): Notification {
    return {
      topic: ONVIF_TOPICS.motion,
      utcTime: new Date().toISOString(),
      operation,
      source: [
        ['VideoSourceConfigurationToken', VIDEO_SOURCE_CONFIG_TOKEN],
        ['VideoAnalyticsConfigurationToken', 'va_1'],
        ['Rule', 'MotionDetectorRule'],
      ],
      data: ['IsMotion', String(this.#motion)],
    };
  }

  #tamperMessage(operation: Notification['operation']): Notification {
    return {
      topic: ONVIF_TOPICS.tamper,
      utcTime: new Date().toISOString(),
      operation,
      source: [['Source', VIDEO_SOURCE_TOKEN]],
      data: ['State', String(this.#tamper)],
    };
  }
}

function pullResponse(point: PullPoint, messages: Notification[]): Answer {
  return {
    body:
      `<tev:PullMessagesResponse><tev:CurrentTime>${new Date().toISOString()}</tev:CurrentTime>` +
      `<tev:TerminationTime>${new Date(point.terminationMs).toISOString()}</tev:TerminationTime>` +
      `${messages.map(notificationXml).join('')}</tev:PullMessagesResponse>`,
  };
}

function notificationXml(n: Notification): string {
  const items = (pairs: Array<[string, string]>) =>
    pairs.map(([name, value]) => `<tt:SimpleItem Name="${name}" Value="${xmlEscape(value)}"/>`).join('');
  return (
    '<wsnt:NotificationMessage>' +
    `<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">${n.topic}</wsnt:Topic>` +
    `<wsnt:Message><tt:Message UtcTime="${n.utcTime}" PropertyOperation="${n.operation}">` +
    `<tt:Source>${items(n.source)}</tt:Source><tt:Data>${items([n.data])}</tt:Data>` +
    '</tt:Message></wsnt:Message></wsnt:NotificationMessage>'
  );
}

/** Subscription lifetime from an xs:duration or an absolute xs:dateTime; default 60 s. */
function terminationFrom(text: string | undefined, now: number): number {
  const duration = parseDurationMs(text);
  if (duration !== undefined) return Math.min(Math.max(duration, 1000), 24 * 3600_000);
  const at = text ? Date.parse(text) : Number.NaN;
  if (Number.isFinite(at) && at > now) return Math.min(at - now, 24 * 3600_000);
  return DEFAULT_TERMINATION_MS;
}

async function resolveFfmpeg(explicit: string | undefined): Promise<string> {
  if (explicit) return explicit;
  const fromEnv = process.env.CITYSENSE_FFMPEG;
  if (fromEnv) return fromEnv;
  try {
    const installer = await import('@ffmpeg-installer/ffmpeg');
    return installer.default.path;
  } catch {
    return 'ffmpeg'; // not bundled on this platform: rely on PATH
  }
}
