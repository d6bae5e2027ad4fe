/** What the map shows: one point per pole, gateway, sensor or camera, with a status. */
import type { MessageKey } from '../../i18n.ts';

/** Kinds of map point. */
export const POINT_KINDS = ['pole', 'gateway', 'sensor', 'camera'] as const;
/** One kind of map point. */
export type PointKind = (typeof POINT_KINDS)[number];

/** Status classes, in order of concern (a cluster shows each class's share). */
export const STATUSES = ['ok', 'warn', 'bad', 'unknown'] as const;
/** One status class. */
export type Status = (typeof STATUSES)[number];

/** Colours of the status classes (also in the legend). */
export const STATUS_COLOURS: Record<Status, string> = {
  ok: '#16a34a',
  warn: '#d97706',
  bad: '#dc2626',
  unknown: '#7c8793',
};

/** One thing on the map. */
export interface MapPoint {
  /** Unique on the map: `<kind>:<id>`. */
  key: string;
  id: string;
  kind: PointKind;
  status: Status;
  /** The source's own state word (online, active, fault …). */
  state: string;
  lon: number;
  lat: number;
  agency: string | null;
  /** Filled in by the map from the district outlines. */
  district?: string | null;
  label: string;
  /** Which API the point came from. */
  source: string;
  updated?: string | null;
  /** Further facts for the details panel: label (translated) and value (as the API has it). */
  facts: Array<[MessageKey, string]>;
}
