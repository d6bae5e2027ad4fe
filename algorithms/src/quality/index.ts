/** Video quality diagnosis (clause 003 §7.3.2.4): frame metrics, per-camera thresholds and findings. */
export { type ColourCast, equivalentCircleCast } from './colour-cast.ts';
export {
  type Finding,
  type FindingKind,
  frameFindings,
  type QualityAssessment,
  QualityDiagnoser,
} from './diagnoser.ts';
export { type FrameMetrics, measureFrame, thumbnailDifference } from './frame-metrics.ts';
export { largestOccludedArea, type OccludedArea } from './occlusion.ts';
export { type QualityThresholds, QualityThresholdsSchema, resolveQualityThresholds } from './thresholds.ts';
