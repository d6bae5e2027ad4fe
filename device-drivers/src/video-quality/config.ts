/**
 * Options of the video quality driver as one TypeBox schema: the cameras to diagnose, each with its own
 * input, sampling rate and thresholds (any subset of the algorithms package's QualityThresholdsSchema).
 */
import { QualityThresholdsSchema, resolveQualityThresholds } from '@citysense/algorithms';
import { hasCode } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { type DriverConfigProblem, resolveDriverConfig } from '../config.ts';

/** One camera under diagnosis. */
export const VideoQualityCameraConfig = Type.Object(
  {
    id: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$',
      description: 'Sparkplug device id of the camera, also the alarm source',
    }),
    input: Type.String({
      minLength: 1,
      description: 'Stream URL (rtsp://, rtmp://, http(s)://) or a video or image file',
    }),
    fps: Type.Number({
      exclusiveMinimum: 0,
      maximum: 30,
      default: 1,
      description: 'Frames diagnosed per second; diagnosis needs few, so keep it low',
    }),
    maxWidth: Type.Integer({
      minimum: 16,
      maximum: 4096,
      default: 640,
      description: 'Frames wider than this are scaled down before diagnosis',
    }),
    // The thresholds' own properties, with a default so that a camera without any gets them all.
    thresholds: Type.Object(QualityThresholdsSchema.properties, {
      additionalProperties: false,
      default: {},
      description: 'Any subset of the quality thresholds; the rest keep their defaults',
    }),
  },
  { additionalProperties: false },
);

/** Options of a VideoQualityDriver. */
export const VideoQualityDriverConfig = Type.Object(
  {
    cameras: Type.Array(VideoQualityCameraConfig, {
      minItems: 1,
      description: 'Cameras to diagnose, each one Sparkplug device',
    }),
    reconnect: Type.Object(
      {
        initialDelayMs: Type.Integer({
          minimum: 0,
          default: 500,
          description: 'First wait before re-opening a failed input; doubles while it keeps failing',
        }),
        maxDelayMs: Type.Integer({
          minimum: 0,
          default: 30_000,
          description: 'Longest wait between attempts',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

/** Resolved options of one camera. */
export type VideoQualityCameraConfig = Static<typeof VideoQualityCameraConfig>;
/** Resolved options of a VideoQualityDriver. */
export type VideoQualityDriverConfig = Static<typeof VideoQualityDriverConfig>;

/** Applies defaults and validates; throws CS_ERR_CONFIG_INVALID listing every problem at once. */
export function resolveVideoQualityConfig(input: unknown): Readonly<VideoQualityDriverConfig> {
  return resolveDriverConfig(VideoQualityDriverConfig, input, 'video quality driver options', crossProblems);
}

/** What the schema cannot say: unique camera ids, threshold tiers in the right order. */
function crossProblems(config: VideoQualityDriverConfig): DriverConfigProblem[] {
  const problems: DriverConfigProblem[] = [];
  const seen = new Set<string>();
  config.cameras.forEach((camera, i) => {
    if (seen.has(camera.id))
      problems.push({ path: `/cameras/${i}/id`, message: `camera id "${camera.id}" is used twice` });
    seen.add(camera.id);
    try {
      resolveQualityThresholds(camera.thresholds);
    } catch (err) {
      if (!hasCode(err, 'CS_ERR_QUALITY_THRESHOLDS')) throw err;
      const details = (err as { details?: { problems?: unknown } }).details;
      const listed = Array.isArray(details?.problems) ? details.problems.map(String) : [String(err)];
      for (const message of listed) problems.push({ path: `/cameras/${i}/thresholds`, message });
    }
  });
  return problems;
}
