/**
 * Which joint-review category a device kind needs (001 Art. 45: police review video,
 * city management reviews urban-operations sensing, emergency management reviews
 * hazard monitoring). Data, not code: the coordinator can always add a category a
 * project needs beyond what its devices say.
 *
 * | kind                                            | category            | reviewed by          |
 * | ----------------------------------------------- | ------------------- | -------------------- |
 * | camera                                          | video               | police               |
 * | noise, air-quality, lamp, manhole, traffic-flow | urban-operations    | city management      |
 * | water-level, structural (tilt), weather         | hazard-monitoring   | emergency management |
 * | gateway, other                                  | none (coordinator)  |                      |
 */
import type { ReviewCategory } from '../auth/roles.ts';
import type { DeviceKind } from '../ledger/device-codes.ts';

/** Review category each device kind needs; null when only the coordinator can tell. */
export const KIND_REVIEW_CATEGORY: Readonly<Record<DeviceKind, ReviewCategory | null>> = {
  camera: 'video',
  noise: 'urban-operations',
  'air-quality': 'urban-operations',
  lamp: 'urban-operations',
  manhole: 'urban-operations',
  'traffic-flow': 'urban-operations',
  'water-level': 'hazard-monitoring',
  structural: 'hazard-monitoring',
  weather: 'hazard-monitoring',
  gateway: null,
  other: null,
};

/** GB 35114 levels a reviewer is asked to look at twice: A (lowest) or none/unknown. B and C are preferred. */
export const LOW_GB35114_LEVELS: ReadonlySet<string | null> = new Set(['A', 'none', null]);
