import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDriverConfig } from '@citysense/device-drivers';
import { type Static, Type } from '@sinclair/typebox';

/** Options of the OPC UA lamp-pole simulator; every field has a default. */
export const OpcUaSimulatorConfig = Type.Object(
  {
    port: Type.Integer({
      minimum: 0,
      maximum: 65_535,
      default: 0,
      description: 'TCP port; 0 takes a free one, kept across stop/start of the same simulator',
    }),
    hostname: Type.String({
      minLength: 1,
      default: 'localhost',
      description: 'Host name in the endpoint URL',
    }),
    updateIntervalMs: Type.Integer({
      minimum: 1,
      default: 1000,
      description: 'Time between PLC value updates',
    }),
    seed: Type.Integer({
      default: 1,
      description: 'PRNG seed; the same seed and clock replay the same values',
    }),
    longitude: Type.Number({
      minimum: -180,
      maximum: 180,
      default: 116.4,
      description: 'Degrees east; sets local solar time, so the lamp lights at dusk',
    }),
    timeOffsetMs: Type.Integer({
      default: 0,
      description: 'Added to the clock, e.g. -43200000 to see night at noon',
    }),
    pkiFolder: Type.String({
      minLength: 1,
      default: join(tmpdir(), 'citysense-opcua', 'simulator-pki'),
      description: 'Server certificate store; reused so that only the first start generates a certificate',
    }),
    users: Type.Array(
      Type.Object(
        { username: Type.String({ minLength: 1 }), password: Type.String() },
        { additionalProperties: false },
      ),
      { default: [], description: 'Accepted username/password pairs, besides anonymous' },
    ),
    allowAnonymous: Type.Boolean({ default: true, description: 'Whether anonymous sessions are accepted' }),
  },
  { additionalProperties: false },
);
/** Resolved OPC UA simulator options. */
export type OpcUaSimulatorConfig = Static<typeof OpcUaSimulatorConfig>;

/** Applies defaults and validates; throws CS_ERR_CONFIG_INVALID listing every problem. */
export function resolveOpcUaSimulatorConfig(input: unknown = {}): Readonly<OpcUaSimulatorConfig> {
  return resolveDriverConfig(OpcUaSimulatorConfig, input, 'OPC UA simulator options');
}
