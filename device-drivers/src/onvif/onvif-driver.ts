/**
 * ONVIF camera driver: connects with the `onvif` client (WS-UsernameToken), reads the
 * device information, media profiles, stream and snapshot URIs, and turns pull-point
 * events (ONVIF Core §9.1, PullMessages) into readings: motion and tamper as booleans,
 * plus a periodic `Video/Online` heartbeat. Losing the camera is a `fault`
 * (CS_ERR_ONVIF_UNREACHABLE), followed by reconnects with exponential backoff.
 * With `metadata.url`, the camera's own analytics (Profile M metadata documents) are
 * polled and emitted as `VIDEO_ANALYTICS_METRIC` frames, like edge inference's.
 * The host feeds `describeCamera().streamUri` to its inference frame source.
 */
import { Agent } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CitysenseError,
  componentLogger,
  encodeVideoAnalyticsFrame,
  errorMessage,
  hasCode,
  type Logger,
  VIDEO_ANALYTICS_METRIC,
  type VideoAnalyticsFrame,
} from '@citysense/protocol';
import onvif, { type Cam } from 'onvif';
import type { DeviceDescriptor, Driver, DriverCapabilities, MetricDescriptor, Reading } from '../driver.ts';
import { driverAbortedError } from '../lifecycle.ts';
import { DriverEmitter } from '../typed-emitter.ts';
import { ONVIF_ERRORS, toOnvifError } from './errors.ts';
import { checkMetadataOptions, type OnvifMetadataOptions, OnvifMetadataPoller } from './metadata-poller.ts';

/** Metric names the driver produces. */
export const ONVIF_METRICS = {
  online: 'Video/Online',
  motion: 'Video/Motion',
  tamper: 'Video/Tamper',
} as const;

/**
 * Event topics and the data item that carries their state, mapped to metrics: data,
 * not code, so a vendor's topic is one more row (ONVIF Core Annex A, Analytics §A).
 */
export const ONVIF_EVENT_MAP: ReadonlyArray<{ topic: string; item: string; metric: string }> = [
  { topic: 'RuleEngine/CellMotionDetector/Motion', item: 'IsMotion', metric: ONVIF_METRICS.motion },
  { topic: 'VideoSource/MotionAlarm', item: 'State', metric: ONVIF_METRICS.motion },
  { topic: 'RuleEngine/MotionRegionDetector/Motion', item: 'State', metric: ONVIF_METRICS.motion },
  { topic: 'VideoSource/GlobalSceneChange/ImagingService', item: 'State', metric: ONVIF_METRICS.tamper },
  { topic: 'VideoSource/GlobalSceneChange/AnalyticsService', item: 'State', metric: ONVIF_METRICS.tamper },
  { topic: 'RuleEngine/TamperDetector/Tamper', item: 'IsTamper', metric: ONVIF_METRICS.tamper },
];

/** Options of an ONVIF driver. */
export interface OnvifDriverOptions {
  /** Driver instance id. */
  id: string;
  /** Sparkplug device id of the camera; default `id`. */
  cameraId?: string;
  /** Camera address: an IP literal or host name. */
  hostname: string;
  /** HTTP port of the device service; default 80. */
  port?: number;
  /** Device service path; default `/onvif/device_service`. */
  path?: string;
  username: string;
  password: string;
  /** Interval of the `Video/Online` heartbeat reading, ms; default 10 000. */
  onlineIntervalMs?: number;
  /** Timeout of one SOAP request, ms; default 10 000. */
  requestTimeoutMs?: number;
  /** Reconnect backoff after the camera is lost; default 500 ms doubling to 30 s. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /**
   * Camera analytics: with `metadata.url` the latest Profile M document is polled and each
   * new frame emitted as a `VIDEO_ANALYTICS_METRIC` reading of the camera. Without a URL
   * nothing is read, even if the camera advertises a metadata configuration: its RTSP
   * metadata track is not read yet.
   */
  metadata?: OnvifMetadataOptions;
  logger?: Logger;
}

/** One media profile, as the host needs it. */
export interface OnvifProfile {
  token: string;
  name: string;
  encoding?: string | undefined;
  width?: number | undefined;
  height?: number | undefined;
  fps?: number | undefined;
}

/** What the camera told us about itself. */
export interface OnvifCameraDescription {
  cameraId: string;
  /** Device service URL. */
  xaddr: string;
  info: {
    manufacturer: string;
    model: string;
    firmwareVersion: string;
    serialNumber: string;
    hardwareId: string;
  };
  profiles: OnvifProfile[];
  /** Token of the profile the URIs belong to (the first one of the first video source). */
  profileToken: string;
  /** RTSP URI of that profile (RTP-Unicast over RTSP), without credentials. */
  streamUri: string;
  /** Snapshot URI, when the camera offers one. */
  snapshotUri?: string | undefined;
  /** Whether the camera accepted a pull-point subscription. */
  events: boolean;
  /** Whether the selected profile has a metadata configuration (an RTSP analytics track). */
  metadataAdvertised: boolean;
}

const { Cam: CamClass } = onvif;

/** An ONVIF camera behind the Driver interface. */
export class OnvifDriver extends DriverEmitter implements Driver {
  readonly id: string;
  readonly capabilities: DriverCapabilities = { telemetry: true, commands: false };
  readonly #o: OnvifDriverOptions;
  readonly #cameraId: string;
  #starting: Promise<void> | undefined;
  #running = false;
  #stopping: Promise<void> | undefined;
  #abort: AbortController | undefined;
  #agent: Agent | undefined;
  #cam: Cam | undefined;
  #description: OnvifCameraDescription | undefined;
  #online = false;
  #timer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  readonly #lastTime = new Map<string, number>();
  #metadataLoop: Promise<void> | undefined;

  constructor(options: OnvifDriverOptions) {
    super(componentLogger('onvif-driver', options.logger).child({ driver: options.id }));
    this.id = options.id;
    this.#o = options;
    this.#cameraId = options.cameraId ?? options.id;
  }

  /** One device, the camera, with its online/motion/tamper metrics, plus analytics frames when metadata is polled. */
  devices(): DeviceDescriptor[] {
    const metrics: MetricDescriptor[] = [
      { name: ONVIF_METRICS.online, type: 'bool' },
      { name: ONVIF_METRICS.motion, type: 'bool' },
      { name: ONVIF_METRICS.tamper, type: 'bool' },
    ];
    if (this.#o.metadata?.url) metrics.push({ name: VIDEO_ANALYTICS_METRIC, type: 'bytes' });
    return [{ id: this.#cameraId, kind: 'camera', metrics }];
  }

  /** What the camera reported when the driver (re)connected; throws CS_ERR_ONVIF_NOT_STARTED before. */
  describeCamera(): OnvifCameraDescription {
    if (!this.#description)
      throw new CitysenseError(
        ONVIF_ERRORS.notStarted,
        `camera ${this.#cameraId} is not described yet: await start() first`,
        409,
      );
    return this.#description;
  }

  /** The stream URI with the driver's credentials in it, for RTSP clients that need them. */
  authenticatedStreamUri(): string {
    const url = new URL(this.describeCamera().streamUri);
    url.username = encodeURIComponent(this.#o.username);
    url.password = encodeURIComponent(this.#o.password);
    return url.toString();
  }

  /** Fetches one JPEG snapshot; throws CS_ERR_ONVIF_SNAPSHOT when there is none or it is not a JPEG. */
  async fetchSnapshot(signal?: AbortSignal): Promise<Uint8Array> {
    const uri = this.describeCamera().snapshotUri;
    const fail = (why: string) =>
      new CitysenseError(ONVIF_ERRORS.snapshot, `snapshot of camera ${this.#cameraId}: ${why}`, 502);
    if (!uri) throw fail('the camera offers no snapshot URI');
    let bytes: Uint8Array;
    try {
      const timeout = AbortSignal.timeout(this.#o.requestTimeoutMs ?? 10_000);
      const res = await fetch(uri, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      if (!res.ok) throw fail(`HTTP ${res.status} from ${uri}`);
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw err instanceof CitysenseError ? err : fail(errorMessage(err));
    }
    if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw fail('the answer is not a JPEG');
    return bytes;
  }

  /**
   * Connects, describes the camera and subscribes to its events; resolves once the
   * camera has answered. Rejects with CS_ERR_ONVIF_AUTH / _UNREACHABLE / _FAULT when
   * the first connection fails (a wrong password is a configuration error, not an
   * outage). Idempotent.
   */
  start(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(driverAbortedError(this.id, signal));
    if (this.#running) return Promise.resolve();
    this.#starting ??= this.#start(signal).finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    await this.#stopping;
    if (this.#o.metadata) checkMetadataOptions(this.#o.metadata, this.id);
    const abort = new AbortController();
    this.#abort = abort;
    const onAbort = () => abort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.#connect(abort.signal);
    } catch (err) {
      this.#teardownClient();
      this.#abort = undefined;
      throw signal?.aborted ? driverAbortedError(this.id, signal) : err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    this.#running = true;
    this.#setOnline(true);
    this.#timer = setInterval(
      () => this.#emitReadings([this.#reading(ONVIF_METRICS.online, this.#online)]),
      this.#o.onlineIntervalMs ?? 10_000,
    );
    this.#loop = this.#pullLoop(abort.signal);
    this.#metadataLoop = this.#startMetadata(abort.signal);
    this.log.info({ camera: this.#cameraId, stream: this.#description?.streamUri }, 'ONVIF camera connected');
  }

  /** Stops pulling, unsubscribes (best effort) and closes every connection. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    // Only a start() already under way is awaited: one called now waits for this stop.
    const starting = this.#starting;
    try {
      // Abort first so a start() still connecting gives up instead of finishing.
      this.#abort?.abort(new Error('driver stopping'));
      await starting?.catch(() => undefined);
      this.#running = false;
      if (this.#timer) clearInterval(this.#timer);
      this.#timer = undefined;
      this.#abort?.abort(new Error('driver stopping'));
      this.#abort = undefined;
      const cam = this.#cam;
      if (cam && hasSubscription(cam)) {
        // Best effort: a camera keeps a forgotten subscription until it expires.
        await Promise.race([
          callCam<unknown>((cb) => cam.unsubscribe(cb, true)).catch(() => undefined),
          delay(500),
        ]);
      }
      this.#teardownClient();
      await Promise.all([this.#loop, this.#metadataLoop]);
      this.#loop = undefined;
      this.#metadataLoop = undefined;
    } finally {
      this.#stopping = undefined;
    }
  }

  #teardownClient(): void {
    // Destroying the agent ends the long-polling PullMessages request at once.
    this.#agent?.destroy();
    this.#agent = undefined;
    this.#cam?.removeAllListeners();
    this.#cam = undefined;
  }

  /** Connects a fresh client, describes the camera and creates a pull point. */
  async #connect(signal: AbortSignal): Promise<void> {
    this.#teardownClient();
    const agent = new Agent({ keepAlive: false });
    const cam = new CamClass({
      hostname: this.#o.hostname,
      port: this.#o.port ?? 80,
      path: this.#o.path ?? '/onvif/device_service',
      username: this.#o.username,
      password: this.#o.password,
      timeout: this.#o.requestTimeoutMs ?? 10_000,
      autoconnect: false,
      agent,
    });
    this.#agent = agent;
    this.#cam = cam;
    cam.on('warning', (w: unknown) => this.log.warn({ warning: String(w) }, 'onvif client warning'));
    const call = <T>(fn: (cb: (err: Error | null, data?: T) => void) => void): Promise<T> =>
      abortable(callCam(fn), signal).catch((err: unknown) => {
        throw signal.aborted ? err : toOnvifError(err, this.#cameraId);
      });
    await call<unknown>((cb) => cam.connect(cb));
    const info = await call<Record<string, unknown>>((cb) => cam.getDeviceInformation(cb));
    const profiles = (cam.profiles ?? []).map(toProfile).filter((p): p is OnvifProfile => p !== undefined);
    const profileToken = str(cam.activeSource?.profileToken) || profiles[0]?.token || '';
    if (!profileToken)
      throw new CitysenseError(ONVIF_ERRORS.fault, `camera ${this.#cameraId} has no media profile`, 502);
    const stream = await call<{ uri?: unknown }>((cb) =>
      cam.getStreamUri({ protocol: 'RTSP', stream: 'RTP-Unicast', profileToken }, cb),
    );
    const streamUri = str(stream?.uri);
    if (!/^rtsp:\/\//i.test(streamUri))
      throw new CitysenseError(
        ONVIF_ERRORS.fault,
        `camera ${this.#cameraId} gave no RTSP stream URI (${streamUri.slice(0, 100) || 'empty'})`,
        502,
      );
    let snapshotUri: string | undefined;
    try {
      const snap = await call<{ uri?: unknown }>((cb) => cam.getSnapshotUri({ profileToken }, cb));
      snapshotUri = str(snap?.uri) || undefined;
    } catch (err) {
      if (signal.aborted) throw err;
      this.log.info({ err: errorMessage(err) }, 'camera offers no snapshot URI');
    }
    let events = true;
    try {
      await this.#subscribe(cam, agent, signal);
    } catch (err) {
      if (signal.aborted || hasCode(err, ONVIF_ERRORS.unreachable)) throw err;
      events = false;
      this.log.warn(
        { err: errorMessage(err) },
        'camera refused a pull-point subscription; no motion/tamper events',
      );
    }
    const selected = (cam.profiles ?? []).find((p) => str(get(get(p, '$'), 'token')) === profileToken);
    this.#description = {
      cameraId: this.#cameraId,
      xaddr: `http://${this.#o.hostname}:${this.#o.port ?? 80}${this.#o.path ?? '/onvif/device_service'}`,
      info: {
        manufacturer: str(info?.manufacturer),
        model: str(info?.model),
        firmwareVersion: str(info?.firmwareVersion),
        serialNumber: str(info?.serialNumber),
        hardwareId: str(info?.hardwareId),
      },
      profiles,
      profileToken,
      streamUri,
      snapshotUri,
      events,
      metadataAdvertised: get(selected, 'metadataConfiguration') !== undefined,
    };
  }

  async #subscribe(cam: Cam, agent: Agent, signal: AbortSignal): Promise<void> {
    await abortable(
      callCam<unknown>((cb) => cam.createPullPointSubscription(cb)),
      signal,
    ).catch((err: unknown) => {
      throw signal.aborted ? err : toOnvifError(err, this.#cameraId);
    });
    // The client sends pull-point requests to the parsed subscription URL as request
    // options; giving it our agent lets stop() end a long poll instead of waiting a minute.
    const address = (
      cam.events.subscription as { subscriptionReference?: { address?: Record<string, unknown> } }
    )?.subscriptionReference?.address;
    if (address) address.agent = agent;
  }

  /** Pulls events until stopped; on loss, reports a fault and reconnects with backoff. */
  async #pullLoop(signal: AbortSignal): Promise<void> {
    const initialDelay = this.#o.reconnect?.initialDelayMs ?? 500;
    const maxDelay = this.#o.reconnect?.maxDelayMs ?? 30_000;
    let backoff = initialDelay;
    let outageCode: string | undefined;
    while (!signal.aborted) {
      const cam = this.#cam;
      try {
        if (!cam || !this.#description)
          throw new CitysenseError(ONVIF_ERRORS.unreachable, 'not connected', 504);
        if (!this.#description.events) {
          // No events to long-poll: check the camera is still there at the heartbeat rate.
          await delay(this.#o.onlineIntervalMs ?? 10_000, undefined, { signal });
          await abortable(
            callCam<unknown>((cb) => cam.getSystemDateAndTime(cb)),
            signal,
          );
          continue;
        }
        const data = await abortable(
          callCam<Record<string, unknown>>((cb) => cam.pullMessages({ messageLimit: 50 }, cb)),
          signal,
        );
        this.#handleMessages(data);
        await abortable(this.#renewIfDue(cam), signal);
        backoff = initialDelay;
      } catch (err) {
        if (signal.aborted) return;
        const coded = toOnvifError(err, this.#cameraId);
        if (coded.code === ONVIF_ERRORS.fault && cam && this.#agent) {
          // Subscription expired or unknown to the camera (e.g. after its reboot): make a new one.
          try {
            await this.#subscribe(cam, this.#agent, signal);
            continue;
          } catch (again) {
            if (signal.aborted) return;
            this.log.warn({ err: errorMessage(again) }, 'could not re-subscribe; reconnecting');
          }
        }
        if (this.#online) {
          this.#setOnline(false);
          this.#fault(coded);
        }
        outageCode ??= coded.code;
        try {
          await delay(backoff, undefined, { signal });
        } catch {
          return; // stopped while waiting
        }
        backoff = Math.min(backoff * 2, maxDelay);
        try {
          await this.#connect(signal);
          if (signal.aborted) return;
          this.#setOnline(true);
          this.log.info({ camera: this.#cameraId }, 'ONVIF camera reconnected');
          outageCode = undefined;
        } catch (again) {
          if (signal.aborted) return;
          const coded = toOnvifError(again, this.#cameraId);
          // One fault per outage, and one more whenever its cause changes (e.g. now a wrong password).
          if (coded.code !== outageCode) this.#fault(coded);
          outageCode = coded.code;
          this.log.debug({ err: coded.message, backoff }, 'reconnect failed');
        }
      }
    }
  }

  /** Starts polling camera analytics when configured; otherwise notes what the camera offers. */
  #startMetadata(signal: AbortSignal): Promise<void> | undefined {
    const options = this.#o.metadata;
    if (!options?.url) {
      if (this.#description?.metadataAdvertised)
        this.log.info(
          { camera: this.#cameraId },
          'camera advertises analytics metadata; its RTSP metadata track is not read: set metadata.url to poll a metadata document',
        );
      return undefined;
    }
    const poller = new OnvifMetadataPoller(options.url, options, {
      source: this.#cameraId,
      username: this.#o.username,
      password: this.#o.password,
      timeoutMs: this.#o.requestTimeoutMs ?? 10_000,
      frameSize: () => {
        const d = this.#description;
        return d?.profiles.find((p) => p.token === d.profileToken);
      },
      version: () => {
        const info = this.#description?.info;
        return [info?.model, info?.firmwareVersion].filter(Boolean).join('/');
      },
    });
    return this.#pollMetadata(poller, options.intervalMs ?? 1000, signal);
  }

  /** Polls until stopped; a failing endpoint is one CS_ERR_ONVIF_METADATA fault per outage. */
  async #pollMetadata(poller: OnvifMetadataPoller, intervalMs: number, signal: AbortSignal): Promise<void> {
    let failing = false;
    while (!signal.aborted) {
      try {
        const frames = await poller.poll(signal);
        if (failing) this.log.info({ camera: this.#cameraId }, 'camera analytics metadata readable again');
        failing = false;
        if (frames.length > 0) this.#emitReadings(frames.map((f) => this.#frameReading(f)));
      } catch (err) {
        if (signal.aborted) return;
        const coded =
          err instanceof CitysenseError
            ? err
            : new CitysenseError(
                ONVIF_ERRORS.metadata,
                `ONVIF analytics metadata: ${errorMessage(err)}`,
                502,
              );
        if (!failing) this.#fault(coded);
        else this.log.debug({ err: coded.message }, 'camera analytics metadata still failing');
        failing = true;
      }
      try {
        await delay(intervalMs, undefined, { signal });
      } catch {
        return; // stopped while waiting
      }
    }
  }

  #frameReading(frame: VideoAnalyticsFrame): Reading {
    // Frames are deduplicated by UtcTime; keep times strictly increasing anyway (storage keys on time).
    const last = this.#lastTime.get(VIDEO_ANALYTICS_METRIC) ?? 0;
    const time = Math.max(frame.utcTimeMs, last + 1);
    this.#lastTime.set(VIDEO_ANALYTICS_METRIC, time);
    const value = encodeVideoAnalyticsFrame(time === frame.utcTimeMs ? frame : { ...frame, utcTimeMs: time });
    return { device: this.#cameraId, metric: VIDEO_ANALYTICS_METRIC, time, value, quality: 'good' };
  }

  async #renewIfDue(cam: Cam): Promise<void> {
    const termination = cam.events.terminationTime as Date | undefined;
    if (termination instanceof Date && termination.getTime() - Date.now() > 30_000) return;
    const renewed = await callCam<Record<string, unknown>>((cb) => cam.renew({}, cb));
    const until = get(renewed, 'terminationTime');
    const now = get(renewed, 'currentTime');
    // Camera clock and ours may differ: keep the lifetime, not the camera's absolute time.
    if (until instanceof Date && now instanceof Date)
      cam.events.terminationTime = new Date(Date.now() + until.getTime() - now.getTime());
  }

  #handleMessages(data: Record<string, unknown> | undefined): void {
    const raw = data?.notificationMessage;
    const messages = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    const batch: Reading[] = [];
    for (const message of messages) {
      const reading = this.#toReading(message);
      if (reading) batch.push(reading);
    }
    if (batch.length > 0) this.#emitReadings(batch);
  }

  /** One notification message → one reading, when its topic is in ONVIF_EVENT_MAP. */
  #toReading(message: unknown): Reading | undefined {
    const topicNode = get(message, 'topic');
    const topic = (typeof topicNode === 'string' ? topicNode : str(get(topicNode, '_')))
      .split('/')
      .map((segment) => segment.replace(/^[^:]*:/, ''))
      .join('/');
    const body = get(get(message, 'message'), 'message');
    const items = get(get(body, 'data'), 'simpleItem');
    for (const rule of ONVIF_EVENT_MAP) {
      if (rule.topic !== topic) continue;
      for (const item of Array.isArray(items) ? items : [items]) {
        const attrs = get(item, '$');
        if (get(attrs, 'Name') !== rule.item) continue;
        const value = get(attrs, 'Value');
        const on = value === true || value === 'true' || value === 1 || value === '1';
        const utc = get(get(body, '$'), 'UtcTime');
        const time =
          utc instanceof Date ? utc.getTime() : typeof utc === 'string' ? Date.parse(utc) : Number.NaN;
        return this.#reading(rule.metric, on, Number.isFinite(time) ? time : Date.now());
      }
    }
    return undefined;
  }

  #setOnline(online: boolean): void {
    this.#online = online;
    this.#emitReadings([this.#reading(ONVIF_METRICS.online, online)]);
  }

  /** A reading stamped so times strictly increase per metric (storage keys on time). */
  #reading(metric: string, value: boolean, sourceTime = Date.now()): Reading {
    const last = this.#lastTime.get(metric) ?? 0;
    const time = Math.max(Math.trunc(sourceTime), last + 1);
    this.#lastTime.set(metric, time);
    return { device: this.#cameraId, metric, time, value, quality: 'good' };
  }

  #emitReadings(batch: Reading[]): void {
    if (this.#running) this.emit('readings', batch);
  }

  #fault(err: CitysenseError): void {
    this.log.warn({ code: err.code, err: err.message }, 'ONVIF camera fault');
    if (this.#running) this.emit('fault', { device: this.#cameraId, code: err.code, message: err.message });
  }
}

type Callback<T> = (err: Error | null, data?: T) => void;

/** Calls a callback-style `onvif` method as a promise. */
function callCam<T>(fn: (cb: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((err, data) => (err ? reject(err) : resolve(data as T)));
    } catch (err) {
      reject(err); // the client throws synchronously on some malformed answers
    }
  });
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function hasSubscription(cam: Cam): boolean {
  return cam.events.subscription !== undefined;
}

function get(node: unknown, key: string): unknown {
  return typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function toProfile(raw: unknown): OnvifProfile | undefined {
  const token = str(get(get(raw, '$'), 'token'));
  if (!token) return undefined;
  const encoder = get(raw, 'videoEncoderConfiguration');
  const resolution = get(encoder, 'resolution');
  return {
    token,
    name: str(get(raw, 'name')),
    encoding: str(get(encoder, 'encoding')) || undefined,
    width: num(get(resolution, 'width')),
    height: num(get(resolution, 'height')),
    fps: num(get(get(encoder, 'rateControl'), 'frameRateLimit')),
  };
}
