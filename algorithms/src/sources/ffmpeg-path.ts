/** Which ffmpeg binary the stream source runs. */

/** Environment variable naming an ffmpeg binary, between an explicit option and the bundled one. */
export const FFMPEG_ENV = 'CITYSENSE_FFMPEG';

let bundled: Promise<string | undefined> | undefined;

/**
 * The ffmpeg to run: `explicit` if given, else `$CITYSENSE_FFMPEG`, else the static binary of
 * `@ffmpeg-installer/ffmpeg`, else `ffmpeg` on PATH.
 */
export async function resolveFfmpegPath(
  explicit?: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (explicit) return explicit;
  const fromEnv = env[FFMPEG_ENV];
  if (fromEnv) return fromEnv;
  bundled ??= loadBundledPath();
  return (await bundled) ?? 'ffmpeg';
}

async function loadBundledPath(): Promise<string | undefined> {
  // Imported lazily: the installer throws (a string) at load time on platforms without
  // its binary package, and that must not break hosts that configure their own ffmpeg.
  try {
    const installer = await import('@ffmpeg-installer/ffmpeg');
    return installer.default.path;
  } catch {
    return undefined; // fall back to PATH; a missing binary surfaces as CS_ERR_SOURCE_FFMPEG_MISSING
  }
}
