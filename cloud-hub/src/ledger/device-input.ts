/**
 * What a caller sends to register a device, validated the same way whether it came as a
 * JSON body or a CSV row: one TypeBox schema, errors named by column.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { DEVICE_KINDS } from './device-codes.ts';

const Text = (maxLength: number, description?: string) =>
  Type.String({ minLength: 1, maxLength, ...(description ? { description } : {}) });

/** Body of `POST /v1/ledger/devices` and columns of a ledger CSV. */
export const DeviceInputSchema = Type.Object(
  {
    kind: Type.Union(
      DEVICE_KINDS.map((k) => Type.Literal(k)),
      { description: `one of ${DEVICE_KINDS.join(', ')}` },
    ),
    model: Type.Optional(Text(128)),
    vendor: Type.Optional(Text(128)),
    ownerAgency: Text(64, 'id of the agency that owns and runs the device'),
    poleId: Type.Optional(Text(64, 'carrier pole the device is mounted on')),
    longitude: Type.Number({ minimum: -180, maximum: 180, description: 'WGS84 longitude, degrees' }),
    latitude: Type.Number({ minimum: -90, maximum: 90, description: 'WGS84 latitude, degrees' }),
    installedOn: Type.Optional(
      Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'installation date, YYYY-MM-DD' }),
    ),
    gb35114Level: Type.Optional(
      Type.Union([Type.Literal('A'), Type.Literal('B'), Type.Literal('C'), Type.Literal('none')], {
        description: 'GB 35114 security level of a video device',
      }),
    ),
    network: Type.Optional(Text(64, 'how the device is connected, e.g. fibre, 4G, NB-IoT, LoRa')),
    dataItems: Type.Optional(
      Type.Array(Text(64), {
        maxItems: 64,
        description: 'data items the device produces, e.g. pm25, noise_db',
      }),
    ),
    code: Type.Optional(
      Type.String({
        pattern: '^[0-9]{20}$',
        description: 'existing unified code / GB/T 28181 ID; allocated by the hub when absent',
      }),
    ),
    centre: Type.Optional(
      Type.String({
        pattern: '^[0-9]{8}$',
        description: 'centre code of an allocated code (default: config)',
      }),
    ),
    industry: Type.Optional(
      Type.String({ pattern: '^[0-9]{2}$', description: 'industry code of an allocated code (default 00)' }),
    ),
    networkCode: Type.Optional(
      Type.String({ pattern: '^[0-9]$', description: 'network digit of an allocated code (default 0)' }),
    ),
    gbType: Type.Optional(
      Type.Union([Type.Literal('131'), Type.Literal('132')], {
        description: 'camera type code: 131 camera, 132 IPC (default)',
      }),
    ),
    state: Type.Optional(
      Type.Union([Type.Literal('proposed'), Type.Literal('active')], {
        description: 'proposed (default) for a new device; active to file a device already in service',
      }),
    ),
  },
  { additionalProperties: false },
);
/** A validated registration. */
export type DeviceInput = Static<typeof DeviceInputSchema>;

/** CSV header names: the JSON field names. */
export const CSV_COLUMNS = Object.keys(DeviceInputSchema.properties) as Array<keyof DeviceInput>;
const NUMERIC = new Set<string>(['longitude', 'latitude']);

/** A problem with one field of an input. */
export interface FieldProblem {
  column: string;
  message: string;
}

/**
 * Turns a CSV record (header → cell) into a DeviceInput or the list of problems.
 * Empty cells are absent; `dataItems` is `;`-separated; numbers must be plain decimals.
 */
export function deviceInputFromCsv(cells: Record<string, string>): DeviceInput | FieldProblem[] {
  const raw: Record<string, unknown> = {};
  for (const [column, cell] of Object.entries(cells)) {
    const value = cell.trim();
    if (value === '') continue;
    if (NUMERIC.has(column)) raw[column] = /^[-+]?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
    else if (column === 'dataItems')
      raw[column] = value
        .split(';')
        .map((s) => s.trim())
        .filter(Boolean);
    else raw[column] = value;
  }
  return checkDeviceInput(raw);
}

/** Validates an input object against the schema; problems carry the column (field) name. */
export function checkDeviceInput(raw: unknown): DeviceInput | FieldProblem[] {
  if (Value.Check(DeviceInputSchema, raw)) return raw;
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(DeviceInputSchema, raw)) {
    const column = e.path.split('/')[1] ?? '';
    const required = e.value === undefined;
    const key = `${column}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ column, message: required ? `${column} is required` : `${column}: ${e.message}` });
  }
  return problems;
}
