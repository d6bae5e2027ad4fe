/**
 * Unified device codes of the ledger. Video devices get a GB/T 28181 ID (Annex D, coding
 * rule A); other sensors get the same 20-digit structure with a type code chosen from the
 * ranges the codec defines, so one parser (`parseGbId` in protocol/) reads every code.
 */
import { CitysenseError, formatGbId, parseGbId } from '@citysense/protocol';

/** Device kinds the ledger knows. */
export const DEVICE_KINDS = [
  'camera',
  'air-quality',
  'noise',
  'water-level',
  'manhole',
  'lamp',
  'weather',
  'traffic-flow',
  'structural',
  'gateway',
  'other',
] as const;
/** One of `DEVICE_KINDS`. */
export type DeviceKind = (typeof DEVICE_KINDS)[number];

/**
 * Type code (3 digits) per kind. Cameras use the Annex D table D.1 codes 131 (camera) or
 * 132 (IPC). Sensors take unassigned codes 180–189 of the front-end peripheral range
 * 131–199 (139 "other peripheral" for `other`); gateways take 119, unassigned in the
 * front-end device range 111–130 beside DVR/NVR/encoders, since they aggregate sensors.
 */
export const KIND_TYPE_CODES: Readonly<Record<DeviceKind, string>> = {
  camera: '132',
  'air-quality': '180',
  noise: '181',
  'water-level': '182',
  manhole: '183',
  lamp: '184',
  weather: '185',
  'traffic-flow': '186',
  structural: '187',
  gateway: '119',
  other: '139',
};

/** Type codes a device of `kind` may carry. */
export function allowedTypeCodes(kind: DeviceKind): string[] {
  return kind === 'camera' ? ['131', '132'] : [KIND_TYPE_CODES[kind]];
}

/** True for kinds that carry video (GB 35114 level applies). */
export function isVideoKind(kind: DeviceKind): boolean {
  return kind === 'camera';
}

/** The 14-digit prefix (centre + industry + type + network) of a code to allocate. */
export function codePrefix(parts: {
  centre: string;
  industry: string;
  type: string;
  network: string;
}): string {
  // formatGbId validates every segment (and the province of the centre code).
  return formatGbId({ ...parts, serial: '000000' }).slice(0, 14);
}

/** The code with `serial` under `prefix`. */
export function codeOf(prefix: string, serial: number): string {
  if (serial > 999_999)
    throw new CitysenseError(
      'CS_ERR_LEDGER_CODE_EXHAUSTED',
      `all 999999 serials under ${prefix} are used: register under another industry or network code`,
      409,
    );
  return parseGbId(`${prefix}${String(serial).padStart(6, '0')}`).id;
}

/** Checks a code given by the caller (an existing device's ID) against the device kind. */
export function checkGivenCode(code: string, kind: DeviceKind): void {
  let type: string;
  try {
    type = parseGbId(code).type;
  } catch (err) {
    throw new CitysenseError('CS_ERR_LEDGER_CODE', (err as Error).message, 400, { column: 'code' });
  }
  const allowed = allowedTypeCodes(kind);
  if (!allowed.includes(type))
    throw new CitysenseError(
      'CS_ERR_LEDGER_CODE',
      `code ${code} has type ${type}, a ${kind} needs type ${allowed.join(' or ')}`,
      400,
      { column: 'code' },
    );
}
