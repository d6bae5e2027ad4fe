/**
 * Video quality diagnosis (视频质量诊断, clause 003 §7.3.2.4) for a list of cameras, as a Driver: each
 * camera's stream or file is sampled at a low rate by a frame source, every frame goes through a
 * QualityDiagnoser, and the camera becomes one Sparkplug device with luma, sharpness, status, findings
 * and signal metrics. A change of a camera's worst severity raises a tiered alarm, carried as an encoded
 * EdgeAlert under EDGE_ALERT_METRIC so that the hub files it in `edge_alerts`.
 *
 * The driver reconnects by itself rather than through FfmpegStreamSource's `reconnect`, so that every
 * outage is seen here: it becomes a `fault` (CS_ERR_QUALITY_SOURCE), `Video/Signal = false` and a
 * critical `signal-loss` status, and the camera is retried with backoff while the others carry on.
 */
import {
  type Finding,
  type Frame,
  openFrameSource,
  QualityDiagnoser,
  type RgbFrame,
  SOURCE_UNREACHABLE,
} from '@citysense/algorithms';
import {
  CitysenseError,
  componentLogger,
  EDGE_ALERT_METRIC,
  encodeEdgeAlert,
  errorMessage,
  type Logger,
} from '@citysense/protocol';
import sharp from 'sharp';
import type { DeviceDescriptor, Driver, DriverCapabilities, MetricDescriptor, Reading } from '../driver.ts';
import { throwIfStartAborted } from '../lifecycle.ts';
import { DriverEmitter } from '../typed-emitter.ts';
import { initialAlarmState, nextQualityAlarm, type QualityAlarmState, qualityStatus } from './alarm.ts';
import {
  resolveVideoQualityConfig,
  type VideoQualityCameraConfig,
  type VideoQualityDriverConfig,
} from './config.ts';

/** Metric names of a camera under diagnosis. */
export const VIDEO_QUALITY_METRICS = {
  /** Mean BT.601 luma, 0–255. */
  luma: 'Quality/Luma',
  /** Variance of the Laplacian of luma: low means blurred. */
  sharpness: 'Quality/Sharpness',
  /** Worst severity now: 0 ok, 1 warning, 2 critical. */
  status: 'Quality/Status',
  /** Comma-separated finding kinds, '' when none. */
  findings: 'Quality/Findings',
  /** Whether frames are arriving. */
  signal: 'Video/Signal',
  /** Tiered alarm: an encoded EdgeAlert (kind `quality`); the hub recognises this exact name. */
  alarm: EDGE_ALERT_METRIC,
} as const;

/** Stable error codes of the video quality driver. */
export const VIDEO_QUALITY_ERRORS = {
  /** A camera's input gives no frames: unreachable, undecodable, or the stream ended. */
  source: 'CS_ERR_QUALITY_SOURCE',
} as const;

const CAMERA_METRICS: readonly MetricDescriptor[] = [
  { name: VIDEO_QUALITY_METRICS.luma, type: 'double' },
  { name: VIDEO_QUALITY_METRICS.sharpness, type: 'double' },
  { name: VIDEO_QUALITY_METRICS.status, type: 'int' },
  { name: VIDEO_QUALITY_METRICS.findings, type: 'string' },
  { name: VIDEO_QUALITY_METRICS.signal, type: 'bool' },
  { name: VIDEO_QUALITY_METRICS.alarm, type: 'bytes' },
];

/** How to build a video quality driver. */
export interface VideoQualityDriverInit {
  /** Driver instance id; default `video-quality`. */
  id?: string;
  /** Options, validated by `start` against VideoQualityDriverConfig (CS_ERR_CONFIG_INVALID). */
  config?: unknown;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

/** Everything the driver keeps about one camera; survives stop/start so alarms are not raised twice. */
interface CameraState {
  config: Readonly<VideoQualityCameraConfig>;
  /** A network stream (never ends by itself), as opposed to a file. */
  live: boolean;
  diagnoser: QualityDiagnoser;
  alarm: QualityAlarmState;
  /** Time of the last reading, so that every series strictly increases. */
  lastTime: number;
  /** Source error code of the outage under way; undefined while frames arrive. */
  outage: string | undefined;
}

/** Diagnoses the picture quality of several cameras; one device per camera. */
export class VideoQualityDriver extends DriverEmitter implements Driver {
  /** Driver instance id. */
  readonly id: string;
  /** Telemetry only: the diagnosis accepts no commands. */
  readonly capabilities: DriverCapabilities = { telemetry: true, commands: false };
  readonly #input: unknown;
  #config: Readonly<VideoQualityDriverConfig> | undefined;
  #cameras: CameraState[] = [];
  #running = false;
  #abort: AbortController | undefined;
  #loops: Promise<void>[] = [];
  #stopping: Promise<void> | undefined;

  constructor(init: VideoQualityDriverInit = {}) {
    const id = init.id ?? 'video-quality';
    super(componentLogger('video-quality', init.logger).child({ driver: id }));
    this.id = id;
    this.#input = init.config ?? {};
  }

  /** One device per configured camera; empty before the first `start`. */
  devices(): DeviceDescriptor[] {
    return this.#cameras.map((c) => ({
      id: c.config.id,
      kind: 'video-quality',
      metrics: CAMERA_METRICS.map((m) => ({ ...m })),
    }));
  }

  /** Validates the options (CS_ERR_CONFIG_INVALID) and starts watching every camera; frames follow. */
  async start(signal?: AbortSignal): Promise<void> {
    throwIfStartAborted(this.id, signal);
    if (this.#running) return;
    if (this.#stopping) await this.#stopping;
    if (this.#running) return;
    throwIfStartAborted(this.id, signal);
    if (!this.#config) {
      const config = resolveVideoQualityConfig(this.#input);
      this.#cameras = config.cameras.map((camera) => ({
        config: camera,
        live: isNetworkInput(camera.input),
        diagnoser: new QualityDiagnoser(camera.thresholds),
        alarm: initialAlarmState(),
        lastTime: Number.NEGATIVE_INFINITY,
        outage: undefined,
      }));
      this.#config = config;
    }
    const abort = new AbortController();
    this.#abort = abort;
    this.#running = true;
    this.#loops = this.#cameras.map((camera) =>
      this.#watch(camera, abort.signal).catch((err: unknown) =>
        this.log.error({ camera: camera.config.id, err: errorMessage(err) }, 'camera watch failed'),
      ),
    );
    this.log.info({ cameras: this.#cameras.map((c) => c.config.id) }, 'video quality diagnosis started');
  }

  /** Stops every camera's source; no event is emitted once this resolves. Idempotent. */
  stop(): Promise<void> {
    if (!this.#running) return this.#stopping ?? Promise.resolve();
    this.#running = false;
    this.#abort?.abort(new Error('driver stopping'));
    this.#abort = undefined;
    const loops = this.#loops;
    this.#loops = [];
    this.#stopping = Promise.all(loops).then(() => {
      this.#stopping = undefined;
      this.log.info('video quality diagnosis stopped');
    });
    return this.#stopping;
  }

  /** Opens the camera's input again and again until `signal` aborts, diagnosing every frame. */
  async #watch(camera: CameraState, signal: AbortSignal): Promise<void> {
    const { fps, maxWidth, input } = camera.config;
    const period = 1000 / fps;
    let failures = 0;
    while (!signal.aborted) {
      let delivered = false;
      let failure: CitysenseError | undefined;
      try {
        const source = await openFrameSource(input, {
          id: camera.config.id,
          fps,
          maxWidth,
          // A file plays at its own rate, like a camera would send it.
          realtime: !camera.live,
          logger: this.log,
        });
        for await (const frame of source.frames(signal)) {
          delivered = true;
          failures = 0;
          await this.#assess(camera, frame, signal);
          // Still images come as fast as they are asked for: pace them to the diagnosis rate.
          if (frame.image.kind === 'encoded') await sleep(period, signal);
        }
        if (camera.live && !signal.aborted)
          failure = new CitysenseError(SOURCE_UNREACHABLE, 'the stream ended', 502);
      } catch (err) {
        failure =
          err instanceof CitysenseError
            ? err
            : new CitysenseError(VIDEO_QUALITY_ERRORS.source, errorMessage(err), 502);
      }
      if (signal.aborted) return;
      if (failure) {
        failures++;
        this.#lost(camera, failure, signal);
        await sleep(this.#backoff(failures), signal);
      } else if (!delivered) {
        // A file that holds no frame: do not spin on it.
        await sleep(period, signal);
      }
      // A file that played to its end plays again.
    }
  }

  /** Diagnoses one frame and emits the camera's readings, plus an alarm when its status changed. */
  async #assess(camera: CameraState, frame: Frame, signal: AbortSignal): Promise<void> {
    const image = await toRgbFrame(frame, camera.config.maxWidth);
    if (signal.aborted) return;
    const time = this.#stamp(camera, frame.time);
    const { metrics, findings } = camera.diagnoser.assess(image, time);
    if (camera.outage !== undefined) {
      this.log.info({ camera: camera.config.id }, 'frames arrive again');
      camera.outage = undefined;
    }
    const id = camera.config.id;
    const reading = (metric: string, value: Reading['value']): Reading => ({
      device: id,
      metric,
      time,
      value,
      quality: 'good',
    });
    const batch = [
      reading(VIDEO_QUALITY_METRICS.luma, metrics.meanLuma),
      reading(VIDEO_QUALITY_METRICS.sharpness, metrics.sharpness),
      ...this.#statusReadings(camera, findings, time),
      reading(VIDEO_QUALITY_METRICS.signal, true),
    ];
    this.#emitReadings(batch, signal);
  }

  /** Reports a failed or ended input: one fault per outage (and one more if its cause changes). */
  #lost(camera: CameraState, failure: CitysenseError, signal: AbortSignal): void {
    const id = camera.config.id;
    const started = camera.outage === undefined;
    if (camera.outage !== failure.code) {
      const message = `camera ${id} gives no frames [${failure.code}]: ${failure.message}; the driver keeps retrying`;
      this.log.warn({ camera: id, code: failure.code, err: failure.message }, 'camera source failed');
      if (this.#running && !signal.aborted)
        this.emit('fault', { device: id, code: VIDEO_QUALITY_ERRORS.source, message });
    }
    camera.outage = failure.code;
    if (!started) return;
    // A restarted stream starts a new picture history (frozen tracking, persistence).
    camera.diagnoser.reset();
    const time = this.#stamp(camera, Date.now());
    const lost: Finding = {
      kind: 'signal-loss',
      severity: 'critical',
      value: 0,
      threshold: 0,
      message: `no frames from the camera: ${failure.message}`,
    };
    this.#emitReadings(
      [
        ...this.#statusReadings(camera, [lost], time),
        { device: id, metric: VIDEO_QUALITY_METRICS.signal, time, value: false, quality: 'good' },
      ],
      signal,
    );
  }

  /** Status and findings readings, and the alarm reading when the status changed. */
  #statusReadings(camera: CameraState, findings: readonly Finding[], time: number): Reading[] {
    const device = camera.config.id;
    const readings: Reading[] = [
      { device, metric: VIDEO_QUALITY_METRICS.status, time, value: qualityStatus(findings), quality: 'good' },
      {
        device,
        metric: VIDEO_QUALITY_METRICS.findings,
        time,
        value: findings.map((f) => f.kind).join(','),
        quality: 'good',
      },
    ];
    const alarm = nextQualityAlarm(camera.alarm, device, findings, time);
    if (alarm) {
      this.log.info(
        { camera: device, severity: alarm.severity, findings: findings.map((f) => f.kind) },
        'video quality alarm',
      );
      readings.push({
        device,
        metric: VIDEO_QUALITY_METRICS.alarm,
        time,
        value: encodeEdgeAlert(alarm),
        quality: 'good',
      });
    }
    return readings;
  }

  #emitReadings(batch: Reading[], signal: AbortSignal): void {
    if (this.#running && !signal.aborted) this.emit('readings', batch);
  }

  /** A reading time after every earlier one of the camera, even if the clock stalls or steps back. */
  #stamp(camera: CameraState, time: number): number {
    camera.lastTime = Math.max(Math.floor(time), camera.lastTime + 1);
    return camera.lastTime;
  }

  #backoff(failures: number): number {
    const { initialDelayMs, maxDelayMs } = this.#config?.reconnect ?? {
      initialDelayMs: 500,
      maxDelayMs: 30_000,
    };
    return Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(failures - 1, 30));
  }
}

/** Decoded RGB of a frame: ffmpeg frames are raw already, still images are decoded and scaled here. */
async function toRgbFrame(frame: Frame, maxWidth: number): Promise<RgbFrame> {
  const image = frame.image;
  if (image.kind === 'raw') return { rgb: image.rgb, width: image.width, height: image.height };
  const { data, info } = await sharp(image.data)
    .resize({ width: maxWidth, withoutEnlargement: true })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
    width: info.width,
    height: info.height,
  };
}

/** A URL other than `file://`: a stream that has no end of its own. */
function isNetworkInput(input: string): boolean {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(input)?.[1]?.toLowerCase();
  return scheme !== undefined && scheme !== 'file';
}

/** Waits `ms`, or less when `signal` aborts; never rejects. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
