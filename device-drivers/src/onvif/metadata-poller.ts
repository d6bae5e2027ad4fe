/**
 * Camera-side analytics (ONVIF Profile M metadata) fetched as documents over HTTP and
 * turned into the `VideoAnalyticsFrame`s edge inference emits, so both land in the same
 * hub tables. Many cameras expose the latest `tt:MetadataStream` document at an HTTP
 * URL besides the RTSP metadata track; only that document form is read here (the RTSP
 * track, ONVIF Streaming §5.1.2.1 `application/x-onvif-metadata`, is not read yet).
 */
import type { VideoAnalyticsFrame } from '@citysense/protocol';
import { CitysenseError, errorMessage } from '@citysense/protocol';
import { authorizationHeader, type DigestChallenge, parseDigestChallenge } from '../gb28181/sip/digest.ts';
import { ONVIF_ERRORS } from './errors.ts';
import { type BoxNormalisation, parseOnvifMetadata, toVideoAnalyticsFrame } from './metadata.ts';

/** How the driver reads camera analytics metadata. */
export interface OnvifMetadataOptions {
  /**
   * HTTP(S) URL of the camera's latest metadata document. Without it no metadata is read,
   * even when the camera advertises a metadata configuration (RTSP tracks are not read yet).
   */
  url?: string;
  /** Poll interval, ms; default 1000. */
  intervalMs?: number;
  /** Box convention of this camera's documents; default `signed` (the ONVIF default). */
  normalisation?: BoxNormalisation;
  /** Extra or overriding `tt:Type` → label rows, merged over ONVIF_CLASS_LABELS. */
  labels?: Readonly<Record<string, string>>;
}

/**
 * ONVIF object class types (`tt:ClassType`, Analytics §5.3.1; `tt:ObjectType` of newer
 * schemas) → the lower-case labels edge inference uses (COCO names where one exists, so
 * "people counted by the camera" and "people counted by YOLOX" share one label).
 * Order matters: a type's index is its `classId`; types not listed keep classId 0
 * (`Other`) and are labelled with their own name in lower case. Data, not code: a
 * vendor's type is one more row, or a `metadata.labels` entry.
 */
export const ONVIF_CLASS_LABELS: ReadonlyArray<readonly [type: string, label: string]> = [
  ['Other', 'other'],
  ['Human', 'person'],
  ['Face', 'face'],
  ['HumanFace', 'face'],
  ['Vehicle', 'vehicle'],
  ['Vehical', 'vehicle'], // ONVIF 1.0 schema spelling, still sent by older firmware
  ['Car', 'car'],
  ['Bus', 'bus'],
  ['Truck', 'truck'],
  ['Bicycle', 'bicycle'],
  ['Bike', 'motorcycle'],
  ['LicensePlate', 'license plate'],
  ['Animal', 'animal'],
];

/** `algorithmId` of frames from camera analytics, next to the edge models' ids. */
export const ONVIF_ANALYTICS_ALGORITHM = 'onvif-analytics';

/** Where the poller gets what it cannot know itself; read at every poll (a reconnect may change it). */
export interface MetadataPollerContext {
  /** Source id of the frames (the camera's device id). */
  source: string;
  username: string;
  password: string;
  /** Timeout of one HTTP request, ms. */
  timeoutMs: number;
  /** Frame size of the selected profile, when the camera told us. */
  frameSize(): { width?: number | undefined; height?: number | undefined } | undefined;
  /** `algorithmVersion` of the frames: camera model and firmware. */
  version(): string;
}

const MAX_TEXT = 128;

/** Checks `metadata` options at start; every problem at once, as CS_ERR_ONVIF_CONFIG. */
export function checkMetadataOptions(options: OnvifMetadataOptions, driver: string): void {
  const problems: string[] = [];
  if (options.url !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(options.url);
    } catch {
      url = undefined;
    }
    if (!url || !/^https?:$/.test(url.protocol))
      problems.push(`metadata.url ${JSON.stringify(options.url)} is not an http(s) URL`);
  }
  const interval = options.intervalMs;
  if (interval !== undefined && !(Number.isFinite(interval) && interval >= 10 && interval <= 3_600_000))
    problems.push(`metadata.intervalMs ${interval} must be 10..3600000`);
  const norm = options.normalisation;
  if (norm !== undefined && norm !== 'signed' && norm !== 'unit')
    problems.push(
      `metadata.normalisation ${JSON.stringify(norm)} must be 'signed' (−1..1, ONVIF default) or 'unit' (0..1)`,
    );
  for (const [type, label] of Object.entries(options.labels ?? {}))
    if (typeof label !== 'string' || label.length === 0 || label.length > MAX_TEXT)
      problems.push(`metadata.labels.${type} must be a label of 1–${MAX_TEXT} characters`);
  if (problems.length > 0)
    throw new CitysenseError(ONVIF_ERRORS.config, `ONVIF driver ${driver}: ${problems.join('; ')}`, 400);
}

const MAX_BYTES = 1024 * 1024;

/** Polls one metadata document URL: fetch (Basic or Digest if asked), parse, dedupe, map labels. */
export class OnvifMetadataPoller {
  readonly #url: URL;
  readonly #normalisation: BoxNormalisation;
  readonly #ctx: MetadataPollerContext;
  readonly #types: string[];
  readonly #labels: ReadonlyMap<string, string>;
  #auth: { scheme: 'basic' } | { scheme: 'digest'; challenge: DigestChallenge; nc: number } | undefined;
  #lastUtcMs = 0;

  constructor(url: string, options: OnvifMetadataOptions, ctx: MetadataPollerContext) {
    this.#url = new URL(url);
    this.#normalisation = options.normalisation ?? 'signed';
    this.#ctx = ctx;
    const rows = new Map(ONVIF_CLASS_LABELS.map(([type, label]) => [type, label]));
    for (const [type, label] of Object.entries(options.labels ?? {})) rows.set(type, label);
    this.#types = [...rows.keys()];
    this.#labels = rows;
  }

  /**
   * Fetches the document and answers the frames newer than the last one answered (frames
   * are deduplicated by `UtcTime`; a camera clock that jumps back is only followed once it
   * passes the last time seen). Throws CS_ERR_ONVIF_METADATA on any failure.
   */
  async poll(signal: AbortSignal): Promise<VideoAnalyticsFrame[]> {
    const size = this.#ctx.frameSize();
    const width = size?.width;
    const height = size?.height;
    if (!width || !height)
      throw metadataError(
        `the selected media profile of camera ${this.#ctx.source} has no resolution, so boxes cannot be sized`,
      );
    const body = await this.#fetch(signal);
    const frames = parseOnvifMetadata(body, {
      frameWidth: width,
      frameHeight: height,
      normalisation: this.#normalisation,
      labels: this.#types,
      maxBytes: MAX_BYTES,
    });
    const fresh = frames
      .filter((f) => f.utcTimeMs > this.#lastUtcMs)
      .sort((a, b) => a.utcTimeMs - b.utcTimeMs);
    const last = fresh.at(-1);
    if (last) this.#lastUtcMs = last.utcTimeMs;
    const version = this.#ctx.version().slice(0, MAX_TEXT) || '1';
    return fresh.map((f) => {
      const frame = toVideoAnalyticsFrame(f, {
        source: this.#ctx.source,
        algorithmId: ONVIF_ANALYTICS_ALGORITHM,
        algorithmVersion: version,
      });
      for (const o of frame.objects) o.label = this.#label(o.label);
      return frame;
    });
  }

  #label(type: string): string {
    return (this.#labels.get(type) ?? type.toLowerCase()).slice(0, MAX_TEXT) || 'other';
  }

  /** GET with the camera credentials: sent pre-emptively once the camera has asked for a scheme. */
  async #fetch(signal: AbortSignal): Promise<Uint8Array> {
    let res = await this.#get(signal);
    if (res.status === 401) {
      await res.body?.cancel();
      const challenged = this.#learnChallenge(res.headers.get('www-authenticate'));
      if (!challenged) {
        this.#auth = undefined;
        throw metadataError(
          `${this.#url.href} answered 401 without a Basic or MD5 Digest challenge: check the camera's HTTP auth settings`,
        );
      }
      res = await this.#get(signal);
      if (res.status === 401) {
        await res.body?.cancel();
        this.#auth = undefined;
        throw metadataError(
          `${this.#url.href} refused the camera credentials (HTTP 401): check username and password`,
        );
      }
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw metadataError(`${this.#url.href} answered HTTP ${res.status}`);
    }
    return readCapped(res, MAX_BYTES, this.#url.href);
  }

  async #get(signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/xml, text/xml' };
    const auth = this.#authorization();
    if (auth) headers.authorization = auth;
    try {
      return await fetch(this.#url, {
        headers,
        redirect: 'error',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#ctx.timeoutMs)]),
      });
    } catch (err) {
      if (signal.aborted) throw err;
      throw metadataError(`${this.#url.href} is unreachable (${errorMessage(err)})`);
    }
  }

  #authorization(): string | undefined {
    const { username, password } = this.#ctx;
    if (!this.#auth) return undefined;
    if (this.#auth.scheme === 'basic')
      return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    this.#auth.nc++;
    return authorizationHeader(this.#auth.challenge, {
      username,
      password,
      method: 'GET',
      uri: `${this.#url.pathname}${this.#url.search}`,
      nc: this.#auth.nc,
    });
  }

  /** Picks Digest (MD5) over Basic from a WWW-Authenticate value (RFC 7235 §4.1); false when neither. */
  #learnChallenge(header: string | null): boolean {
    if (!header) return false;
    const digestAt = header.search(/\bDigest\s/i);
    if (digestAt >= 0) {
      // fetch joins several challenges with ", ": cut the Digest one at the next scheme.
      const rest = header.slice(digestAt);
      const end = rest.search(/,\s*(?:Basic|Bearer|Negotiate|NTLM|Digest)\s/i);
      const challenge = parseDigestChallenge(end > 0 ? rest.slice(0, end) : rest);
      if (challenge && /^MD5$/i.test(challenge.algorithm)) {
        this.#auth = { scheme: 'digest', challenge, nc: 0 };
        return true;
      }
    }
    if (/\bBasic\b/i.test(header)) {
      this.#auth = { scheme: 'basic' };
      return true;
    }
    return false;
  }
}

function metadataError(message: string): CitysenseError {
  return new CitysenseError(ONVIF_ERRORS.metadata, `ONVIF analytics metadata: ${message}`, 502);
}

/** The body, refusing more than `max` bytes without buffering them. */
async function readCapped(res: Response, max: number, url: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > max) {
    await res.body?.cancel();
    throw metadataError(`${url} sent ${declared} bytes, more than ${max}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body ?? []) {
      size += chunk.length;
      if (size > max) throw metadataError(`${url} sent more than ${max} bytes`);
      chunks.push(chunk);
    }
  } catch (err) {
    await res.body?.cancel().catch(() => undefined);
    throw err instanceof CitysenseError ? err : metadataError(`${url} broke off (${errorMessage(err)})`);
  }
  return Buffer.concat(chunks);
}
