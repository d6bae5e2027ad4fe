import { resolveDriverConfig } from '@citysense/device-drivers';
import { type Static, Type } from '@sinclair/typebox';

/** Options of the MQTT sensor simulator; every field has a default. */
export const MqttSensorSimulatorConfig = Type.Object(
  {
    url: Type.String({
      pattern: '^mqtts?://[^\\s]+$',
      default: 'mqtt://127.0.0.1:1883',
      description: 'Broker the simulated platforms publish to',
    }),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    intervalMs: Type.Integer({
      minimum: 1,
      default: 10_000,
      description: 'Time between uplinks of each device (real NB-IoT/LoRa devices report every minutes)',
    }),
    qos: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], { default: 1 }),
    seed: Type.Integer({ default: 1, description: 'PRNG seed; the same seed replays the same values' }),
    manholes: Type.Array(Type.String({ pattern: '^[0-9]{15}$' }), {
      default: ['866207059412345'],
      description: 'IMEIs of NB-IoT manhole-cover sensors, publishing on nbiot/{imei}/up',
    }),
    applicationId: Type.String({
      pattern: '^[A-Za-z0-9-]{1,64}$',
      default: '1',
      description: 'ChirpStack application of the water-level sensors',
    }),
    waterLevels: Type.Array(Type.String({ pattern: '^[0-9a-f]{16}$' }), {
      default: ['70b3d57ed0041234'],
      description: 'DevEUIs of LoRaWAN water-level sensors, on application/{app}/device/{devEui}/event/up',
    }),
    meters: Type.Array(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' }), {
      default: ['MTR-0001'],
      description: 'Smart meter ids; all publish on metering/uplink with the id in the payload',
    }),
  },
  { additionalProperties: false },
);
/** Resolved MQTT sensor simulator options. */
export type MqttSensorSimulatorConfig = Static<typeof MqttSensorSimulatorConfig>;

/** Applies defaults and validates; throws CS_ERR_CONFIG_INVALID listing every problem. */
export function resolveMqttSensorSimulatorConfig(input: unknown = {}): Readonly<MqttSensorSimulatorConfig> {
  return resolveDriverConfig(MqttSensorSimulatorConfig, input, 'MQTT sensor simulator options');
}
