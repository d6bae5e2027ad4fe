/** The ffmpeg command line that turns any input into raw RGB24 frames on stdout. */
import { extensionOf, schemeOf } from './spec.ts';

/** Containers that carry presentation timestamps. */
const TIMESTAMPED: ReadonlySet<string> = new Set([
  '.ts',
  '.mp4',
  '.m4s',
  '.flv',
  '.m3u8',
  '.mkv',
  '.webm',
  '.mov',
]);

/** What the command line depends on. */
export interface FfmpegArgsOptions {
  /** URL or path as ffmpeg should open it. */
  input: string;
  /** Output rate; every decoded frame when undefined. */
  fps?: number | undefined;
  /** Scale frames wider than this down to it, keeping aspect. */
  maxWidth?: number | undefined;
  /** Socket/IO timeout handed to ffmpeg, ms. */
  ioTimeoutMs: number;
  /** Read the input at its native rate (`-re`): makes a file behave like a camera. */
  realtime: boolean;
  /** Extra HTTP request headers, CRLF-terminated lines (used to keep `Host` after resolving). */
  httpHeaders?: string | undefined;
  /** A live stream: HTTP inputs (MJPEG cameras) get arrival-time timestamps. */
  live?: boolean | undefined;
}

/** Arguments for `ffmpeg`, input options first; output is `-f rawvideo -pix_fmt rgb24 pipe:1`. */
export function ffmpegArgs(o: FfmpegArgsOptions): string[] {
  const scheme = schemeOf(o.input);
  const timeoutUs = String(Math.round(o.ioTimeoutMs * 1000));
  // -nostats keeps progress lines out of the stderr tail we attach to errors; the
  // `Output #0` stream line we parse for the frame size is printed at level info.
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info'];
  if (scheme === 'rtsp' || scheme === 'rtsps') {
    // ffmpeg 4.1's RTSP demuxer ignores -rw_timeout; its socket timeout is -stimeout (µs).
    // TCP interleaving avoids UDP loss and firewall trouble on city networks.
    args.push('-rtsp_transport', 'tcp', '-stimeout', timeoutUs);
  } else {
    args.push('-rw_timeout', timeoutUs);
  }
  if ((scheme === 'http' || scheme === 'https') && o.httpHeaders) args.push('-headers', o.httpHeaders);
  // MJPEG over HTTP (`/video.mjpg`, `…/video.cgi`) carries no timestamps: ffmpeg would assume
  // 25 fps and the fps filter would wait for 25 camera frames per output second. For a live
  // camera, arrival time is the truth. Containers with their own clocks (TS, MP4, FLV, HLS) keep them.
  if ((scheme === 'http' || scheme === 'https') && o.live && !TIMESTAMPED.has(extensionOf(o.input)))
    args.push('-use_wallclock_as_timestamps', '1');
  if (o.realtime) args.push('-re');
  args.push('-i', o.input, '-map', '0:v:0', '-an', '-sn', '-dn');
  const filters: string[] = [];
  if (o.fps !== undefined) filters.push(`fps=${o.fps}`);
  if (o.maxWidth !== undefined) filters.push(`scale=w='min(iw,${o.maxWidth})':h=-1`);
  if (filters.length > 0) args.push('-vf', filters.join(','));
  // The fps filter already paces frames; passthrough stops the muxer duplicating them again.
  args.push('-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  return args;
}
