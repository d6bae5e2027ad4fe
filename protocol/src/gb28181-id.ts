/**
 * GB/T 28181 device and platform IDs (GB/T 28181-2016/2022 Annex D, coding rule A):
 * 20 decimal digits = centre code (8: province 2, city 2, county 2, basic unit 2,
 * from the GB/T 2260 civil code, unused levels 0) + industry (2) + type (3) +
 * network (1) + serial (6). The SIP domain and digest realm are the first 10 digits.
 */
import { CitysenseError } from './errors.ts';

/** What a type code says a thing is (Annex D, table D.1). */
export type GbIdCategory = 'front-end device' | 'peripheral' | 'platform' | 'centre user' | 'terminal user';

/** A parsed ID. */
export interface GbId {
  id: string;
  /** 8-digit centre code, e.g. `34020000`. */
  centre: string;
  province: string;
  /** `00` when the centre is a province-level one. */
  city: string;
  county: string;
  basicUnit: string;
  industry: string;
  /** 3-digit type code, e.g. `132`. */
  type: string;
  typeName: string;
  category: GbIdCategory;
  /** Network identifier digit: 0–4 video/alarm private network, 5 public-security network, … */
  network: string;
  networkName: string;
  serial: string;
  /** SIP domain / digest realm: the first 10 digits. */
  domain: string;
}

/** Type codes citysense names (Annex D table D.1); other codes in a known range keep the range's name. */
export const GB_TYPES: Readonly<Record<string, string>> = {
  '111': 'DVR',
  '112': 'video server',
  '113': 'encoder',
  '114': 'decoder',
  '115': 'video switching matrix',
  '116': 'audio switching matrix',
  '117': 'alarm controller',
  '118': 'NVR',
  '131': 'camera',
  '132': 'IPC',
  '133': 'display',
  '134': 'alarm input',
  '135': 'alarm output',
  '136': 'voice input',
  '137': 'voice output',
  '138': 'mobile transmitter',
  '200': 'SIP server / platform',
  '201': 'web application server',
  '202': 'media distribution server',
  '203': 'proxy server',
  '204': 'security server',
  '205': 'alarm server',
  '206': 'database server',
  '207': 'GIS server',
  '208': 'management server',
  '209': 'access gateway',
  '210': 'media storage server',
  '211': 'signalling security routing gateway',
  '215': 'business group',
  '216': 'virtual organisation',
};

const RANGES: ReadonlyArray<{ from: number; to: number; category: GbIdCategory; name: string }> = [
  { from: 111, to: 130, category: 'front-end device', name: 'front-end device' },
  { from: 131, to: 199, category: 'peripheral', name: 'front-end peripheral' },
  { from: 200, to: 299, category: 'platform', name: 'platform device' },
  { from: 300, to: 399, category: 'centre user', name: 'centre user' },
  { from: 400, to: 499, category: 'terminal user', name: 'terminal user' },
];

const NETWORKS: Readonly<Record<string, string>> = {
  '0': 'video/alarm private network',
  '1': 'video/alarm private network',
  '2': 'video/alarm private network',
  '3': 'video/alarm private network',
  '4': 'video/alarm private network',
  '5': 'public-security information network',
  '6': 'government network',
  '7': 'Internet',
  '8': 'social-resource access network',
  '9': 'reserved',
};

/** GB/T 2260 province codes: 11–15, 21–23, 31–37, 41–46, 50–54, 61–65, 71, 81, 82. */
function validProvince(code: number): boolean {
  return (
    (code >= 11 && code <= 15) ||
    (code >= 21 && code <= 23) ||
    (code >= 31 && code <= 37) ||
    (code >= 41 && code <= 46) ||
    (code >= 50 && code <= 54) ||
    (code >= 61 && code <= 65) ||
    code === 71 ||
    code === 81 ||
    code === 82
  );
}

/** Parses and validates an ID; throws CS_ERR_GB_ID saying which segment is wrong. */
export function parseGbId(id: string): GbId {
  if (typeof id !== 'string' || !/^\d{20}$/.test(id))
    throw gbIdError(id, 'must be exactly 20 decimal digits');
  const province = id.slice(0, 2);
  if (!validProvince(Number(province)))
    throw gbIdError(id, `centre code starts with ${province}, not a GB/T 2260 province code`);
  const type = id.slice(10, 13);
  const range = RANGES.find((r) => Number(type) >= r.from && Number(type) <= r.to);
  if (!range) throw gbIdError(id, `type code ${type} is outside the defined ranges 111–499`);
  const network = id.charAt(13);
  return {
    id,
    centre: id.slice(0, 8),
    province,
    city: id.slice(2, 4),
    county: id.slice(4, 6),
    basicUnit: id.slice(6, 8),
    industry: id.slice(8, 10),
    type,
    typeName: GB_TYPES[type] ?? range.name,
    category: range.category,
    network,
    networkName: NETWORKS[network] ?? 'reserved',
    serial: id.slice(14),
    domain: id.slice(0, 10),
  };
}

/** True when `id` is a valid GB/T 28181 ID. */
export function isGbId(id: unknown): id is string {
  try {
    parseGbId(id as string);
    return true;
  } catch {
    return false;
  }
}

/** Builds an ID from its segments (validated like a received one). */
export function formatGbId(parts: {
  centre: string;
  industry: string;
  type: string;
  network: string;
  serial: string | number;
}): string {
  const serial = typeof parts.serial === 'number' ? String(parts.serial).padStart(6, '0') : parts.serial;
  const id = `${parts.centre}${parts.industry}${parts.type}${parts.network}${serial}`;
  if (
    !/^\d{8}$/.test(parts.centre) ||
    !/^\d{2}$/.test(parts.industry) ||
    !/^\d{3}$/.test(parts.type) ||
    !/^\d$/.test(parts.network) ||
    !/^\d{6}$/.test(serial)
  )
    throw gbIdError(id, 'segments must be 8 + 2 + 3 + 1 + 6 digits');
  return parseGbId(id).id;
}

function gbIdError(id: unknown, why: string): CitysenseError {
  const shown = typeof id === 'string' ? JSON.stringify(id.slice(0, 40)) : String(id);
  return new CitysenseError('CS_ERR_GB_ID', `${shown} is not a GB/T 28181 ID: ${why}`, 400);
}
