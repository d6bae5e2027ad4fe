/** The adaptation test: do a test image's detections meet what the manifest `tests` expect? */
import type { Expectation } from '../manifest.ts';
import type { DetectedObject } from './decoders.ts';
import { iou } from './nms.ts';

/** An expectation as authored: `minCount` defaults to 1 and `minIou` to 0.5, as in the manifest schema. */
export type ExpectationInput = Omit<Expectation, 'minCount' | 'minIou'> &
  Partial<Pick<Expectation, 'minCount' | 'minIou'>>;

/** Outcome of one expectation: how many objects carry its label and, on failure, why. */
export interface ExpectationResult {
  expectation: ExpectationInput;
  found: number;
  passed: boolean;
  /** Best IoU of a detection of the label with the expected box, when a box is expected. */
  bestIou?: number;
  reason?: string;
}

/** Outcome of all expectations of one image: passed when every one passed. */
export interface ExpectationReport {
  passed: boolean;
  results: ExpectationResult[];
}

/** Checks detections against expectations (counts per label, optionally one box overlap each). */
export function checkExpectations(
  objects: readonly DetectedObject[],
  expectations: readonly ExpectationInput[],
): ExpectationReport {
  const results = expectations.map((expectation) => checkOne(objects, expectation));
  return { passed: results.every((r) => r.passed), results };
}

function checkOne(objects: readonly DetectedObject[], expectation: ExpectationInput): ExpectationResult {
  const { label, maxCount, box } = expectation;
  const minCount = expectation.minCount ?? 1;
  const minIou = expectation.minIou ?? 0.5;
  const matching = objects.filter((o) => o.label === label);
  const found = matching.length;
  const reasons: string[] = [];
  if (found < minCount) reasons.push(`found ${found} "${label}", expected at least ${minCount}`);
  if (maxCount !== undefined && found > maxCount)
    reasons.push(`found ${found} "${label}", expected at most ${maxCount}`);
  let bestIou: number | undefined;
  if (box) {
    bestIou = matching.reduce((best, o) => (o.box ? Math.max(best, iou(o.box, box)) : best), 0);
    if (bestIou < minIou)
      reasons.push(
        `no "${label}" overlaps [${box.join(', ')}] by IoU ≥ ${minIou} (best ${bestIou.toFixed(3)})`,
      );
  }
  const result: ExpectationResult = { expectation, found, passed: reasons.length === 0 };
  if (bestIou !== undefined) result.bestIou = bestIou;
  if (reasons.length > 0) result.reason = reasons.join('; ');
  return result;
}
