/**
 * Video quality diagnosis (视频质量诊断, clause 003 §7.3.2.4) for one camera: turns `measureFrame`
 * metrics into findings. Only the root cause is reported where one fault implies another: a signal-loss
 * frame is also dark, flat and frozen; an occluded frame is also dark; a critically dark or bright frame
 * has no detail left to judge focus by.
 */
import type { RgbFrame } from '../inference/preprocess.ts';
import { type FrameMetrics, measureFrame, thumbnailDifference } from './frame-metrics.ts';
import { type QualityThresholds, resolveQualityThresholds } from './thresholds.ts';

/** The faults the diagnosis recognises. */
export type FindingKind =
  | 'too-dark'
  | 'too-bright'
  | 'blur'
  | 'frozen'
  | 'signal-loss'
  | 'colour-cast'
  | 'occlusion';

/** One fault seen on a frame: the measured value, the threshold it crossed and what to do about it. */
export interface Finding {
  kind: FindingKind;
  severity: 'warning' | 'critical';
  value: number;
  threshold: number;
  message: string;
}

/** Outcome of assessing one frame. */
export interface QualityAssessment {
  metrics: FrameMetrics;
  findings: Finding[];
}

/** Stateful per-camera diagnosis: tracks frozen pictures and escalates warnings that persist. */
export class QualityDiagnoser {
  readonly thresholds: Readonly<QualityThresholds>;
  #reference: Float32Array | undefined;
  #unchangedSince = 0;
  #lastTime = Number.NEGATIVE_INFINITY;
  readonly #presentSince = new Map<FindingKind, number>();

  /** `thresholds`: any subset of QualityThresholdsSchema; throws CS_ERR_QUALITY_THRESHOLDS when invalid. */
  constructor(thresholds: unknown = {}) {
    this.thresholds = resolveQualityThresholds(thresholds);
  }

  /** Measures `frame` taken at `time` (milliseconds, e.g. epoch or stream PTS) and lists its faults. */
  assess(frame: RgbFrame, time: number): QualityAssessment {
    const metrics = measureFrame(frame);
    return { metrics, findings: this.judge(metrics, time) };
  }

  /** Findings for metrics already measured at `time` (milliseconds); frames must come in time order. */
  judge(metrics: FrameMetrics, time: number): Finding[] {
    if (time < this.#lastTime) this.reset();
    this.#lastTime = time;
    const frozenFor = this.#trackFrozen(metrics.thumbnail, time);
    const found = frameFindings(metrics, this.thresholds);
    if (!found.some((f) => f.kind === 'signal-loss')) {
      const frozen = this.thresholds.frozen;
      if (frozenFor >= frozen.warning) {
        const critical = frozenFor >= frozen.critical;
        found.push({
          kind: 'frozen',
          severity: critical ? 'critical' : 'warning',
          value: frozenFor,
          threshold: critical ? frozen.critical : frozen.warning,
          message: `the picture has not changed for ${frozenFor.toFixed(0)} s (limit ${critical ? frozen.critical : frozen.warning} s): the stream is frozen; restart the encoder or the stream`,
        });
      }
    }
    return this.#escalate(found, time);
  }

  /** Forgets the history (frozen tracking, persistence), e.g. after the stream restarts. */
  reset(): void {
    this.#reference = undefined;
    this.#lastTime = Number.NEGATIVE_INFINITY;
    this.#presentSince.clear();
  }

  /** Seconds the picture has stayed within `frozen.difference` of the frame that started the run. */
  #trackFrozen(thumbnail: Float32Array, time: number): number {
    // Comparing with the run's first frame, not the previous one, keeps a slow drift from counting as frozen.
    if (
      this.#reference &&
      thumbnailDifference(this.#reference, thumbnail) < this.thresholds.frozen.difference
    )
      return (time - this.#unchangedSince) / 1000;
    this.#reference = thumbnail;
    this.#unchangedSince = time;
    return 0;
  }

  /** Raises warnings present for `escalateAfter` seconds or more to critical. */
  #escalate(found: Finding[], time: number): Finding[] {
    for (const kind of [...this.#presentSince.keys()])
      if (!found.some((f) => f.kind === kind)) this.#presentSince.delete(kind);
    return found.map((f) => {
      const since = this.#presentSince.get(f.kind) ?? time;
      this.#presentSince.set(f.kind, since);
      const seconds = (time - since) / 1000;
      if (f.severity === 'critical' || seconds < this.thresholds.escalateAfter) return f;
      return {
        ...f,
        severity: 'critical',
        message: `${f.message} (persisting for ${seconds.toFixed(0)} s)`,
      };
    });
  }
}

/** Findings that depend on one frame alone (everything but `frozen`), root causes only. */
export function frameFindings(m: FrameMetrics, t: Readonly<QualityThresholds>): Finding[] {
  if (m.lumaStdDev <= t.signalLoss.lumaStdDev)
    return [
      {
        kind: 'signal-loss',
        severity: 'critical',
        value: m.lumaStdDev,
        threshold: t.signalLoss.lumaStdDev,
        message: `the picture is uniform (luma std-dev ${m.lumaStdDev.toFixed(1)} ≤ ${t.signalLoss.lumaStdDev}, mean luma ${m.meanLuma.toFixed(0)}): no video signal; check the camera's power, video cable and encoder input`,
      },
    ];
  const found: Finding[] = [];
  const occluded =
    m.occludedShare > t.occlusion.warning && m.remainderLuma >= t.tooDark.warning
      ? tiered('occlusion', m.occludedShare, t.occlusion, 'above')
      : undefined;
  if (occluded)
    found.push({
      ...occluded,
      message: `${(m.occludedShare * 100).toFixed(0)}% of the picture is one dark, featureless area while the rest is lit: the lens is probably blocked; check for objects in front of the camera`,
    });
  const dark = occluded ? undefined : tiered('too-dark', m.meanLuma, t.tooDark, 'below');
  if (dark)
    found.push({
      ...dark,
      message: `mean luma ${m.meanLuma.toFixed(0)} is below ${dark.threshold}: the picture is too dark; check the lighting, IR illuminator and exposure settings`,
    });
  const bright = tiered('too-bright', m.meanLuma, t.tooBright, 'above');
  if (bright)
    found.push({
      ...bright,
      message: `mean luma ${m.meanLuma.toFixed(0)} is above ${bright.threshold}: the picture is over-exposed; check for light shining into the lens and the exposure or iris settings`,
    });
  const exposureLost = dark?.severity === 'critical' || bright?.severity === 'critical';
  const blur = exposureLost || occluded ? undefined : tiered('blur', m.sharpness, t.blur, 'below');
  if (blur)
    found.push({
      ...blur,
      message: `sharpness (Laplacian variance) ${m.sharpness.toFixed(1)} is below ${blur.threshold}: the picture is blurred; check the focus and whether the lens is dirty or fogged`,
    });
  const cast =
    m.chroma >= t.colourCast.minChroma
      ? tiered('colour-cast', m.colourCast, t.colourCast, 'above')
      : undefined;
  if (cast)
    found.push({
      ...cast,
      message: `colour cast factor ${m.colourCast.toFixed(2)} is above ${cast.threshold} (mean a* ${m.meanA.toFixed(0)}, b* ${m.meanB.toFixed(0)}): check the white balance, the IR-cut filter and the video cable`,
    });
  return found;
}

/** The finding without its message when `value` crosses the warning or critical threshold. */
function tiered(
  kind: FindingKind,
  value: number,
  tier: { warning: number; critical: number },
  direction: 'below' | 'above',
): Omit<Finding, 'message'> | undefined {
  const beyond = (limit: number) => (direction === 'below' ? value < limit : value > limit);
  if (beyond(tier.critical)) return { kind, severity: 'critical', value, threshold: tier.critical };
  if (beyond(tier.warning)) return { kind, severity: 'warning', value, threshold: tier.warning };
  return undefined;
}
