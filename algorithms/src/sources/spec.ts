/** How a source spec string is read: scheme, file kind, liveness, redaction. */
import { extname } from 'node:path';

/** Extensions of still images the image sources read (lower case, with dot). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.png']);

/** Extensions that mark a path as video for ffmpeg, even before the file exists. */
export const VIDEO_EXTENSIONS: ReadonlySet<string> = new Set([
  '.mp4',
  '.m4v',
  '.mov',
  '.mkv',
  '.webm',
  '.avi',
  '.flv',
  '.ts',
  '.m2ts',
  '.mts',
  '.mpg',
  '.mpeg',
  '.3gp',
  '.wmv',
  '.h264',
  '.264',
  '.h265',
  '.265',
  '.hevc',
  '.mjpeg',
  '.mjpg',
  '.m3u8',
  '.sdp',
]);

/** Schemes of inputs that never end by themselves (camera and broadcast protocols). */
const LIVE_SCHEMES: ReadonlySet<string> = new Set([
  'rtsp',
  'rtsps',
  'rtmp',
  'rtmps',
  'rtmpt',
  'rtp',
  'srtp',
  'udp',
  'tcp',
  'srt',
  'http',
  'https',
]);

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** The URL scheme of `spec` in lower case (`rtsp`, `http`, `file`), or undefined for a plain path. */
export function schemeOf(spec: string): string | undefined {
  return SCHEME.exec(spec)?.[1]?.toLowerCase();
}

/** Lower-case extension of a path or URL path, with the dot; '' when none. */
export function extensionOf(spec: string): string {
  const path = schemeOf(spec) === undefined ? spec : spec.replace(/[?#].*$/, '');
  return extname(path).toLowerCase();
}

/** Whether an input is live by default: a network URL, not a local file. */
export function isLiveByDefault(spec: string): boolean {
  const scheme = schemeOf(spec);
  return scheme !== undefined && LIVE_SCHEMES.has(scheme);
}

/** `spec` with the password of any `scheme://user:password@` replaced by `***`, for logs and errors. */
export function redactCredentials(text: string): string {
  // Up to the last '@' before the path, as ffmpeg splits it: camera passwords often hold a raw '@'.
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^/@\s:]*):[^/\s]*@/gi, '$1:***@');
}
