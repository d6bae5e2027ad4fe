/**
 * The MqttSensorDriver mappings that read what MqttSensorSimulator publishes: the demo's and the
 * tests' configuration, and a worked example of each way to find a device and a time.
 */
import type { MqttSensorMapping } from '@citysense/device-drivers';
import type { MqttSensorSimulatorConfig } from './config.ts';

/** Topic of the NB-IoT manhole-cover sensors' uplinks (platform forwarding, one topic per IMEI). */
export const NBIOT_UPLINK_FILTER = 'nbiot/+/up';
/** Smart meters share one topic; the meter id is in the payload. */
export const METERING_TOPIC = 'metering/uplink';

/** Device id of a manhole sensor in readings. */
export const manholeDeviceId = (imei: string): string => `manhole-${imei}`;
/** Device id of a water-level sensor in readings. */
export const waterLevelDeviceId = (devEui: string): string => `wl-${devEui}`;

/** ChirpStack's uplink topic filter of one application. */
export function chirpstackUplinkFilter(applicationId: string): string {
  return `application/${applicationId}/device/+/event/up`;
}

/** Driver mappings for the devices of a simulator resolved from `config`. */
export function mqttSensorSimulatorMappings(
  config: Pick<MqttSensorSimulatorConfig, 'manholes' | 'waterLevels' | 'meters' | 'applicationId'>,
): MqttSensorMapping[] {
  const mappings: MqttSensorMapping[] = [];
  if (config.manholes.length > 0) {
    mappings.push({
      topic: NBIOT_UPLINK_FILTER,
      device: { fromTopic: 1, prefix: 'manhole-' },
      devices: config.manholes.map(manholeDeviceId),
      kind: 'manhole-cover',
      time: { path: '$.ts', format: 'epoch-s' },
      metrics: [
        { name: 'Manhole/Tilt', path: '$.data.tilt', type: 'double', unit: 'deg', optional: false },
        {
          name: 'Manhole/Battery',
          path: '$.data.battery',
          type: 'double',
          unit: 'V',
          scale: 0.001,
          optional: false,
        },
        { name: 'Manhole/Open', path: '$.data.open', type: 'bool', optional: false },
        { name: 'Radio/RSRP', path: '$.data.rsrp', type: 'int', unit: 'dB[mW]', optional: true },
      ],
    });
  }
  if (config.waterLevels.length > 0) {
    mappings.push({
      topic: chirpstackUplinkFilter(config.applicationId),
      device: { fromTopic: 3, prefix: 'wl-' },
      devices: config.waterLevels.map(waterLevelDeviceId),
      kind: 'water-level',
      time: { path: '$.time', format: 'iso8601' },
      metrics: [
        {
          name: 'Water/Level',
          path: '$.object.level_cm',
          type: 'double',
          unit: 'm',
          scale: 0.01,
          optional: false,
        },
        { name: 'Battery/Level', path: '$.object.battery_pct', type: 'int', unit: '%', optional: true },
        { name: 'Radio/RSSI', path: '$.rxInfo[0].rssi', type: 'int', unit: 'dB[mW]', optional: true },
      ],
    });
  }
  if (config.meters.length > 0) {
    mappings.push({
      topic: METERING_TOPIC,
      device: { fromJson: '$.meterId' },
      devices: [...config.meters],
      kind: 'electricity-meter',
      time: { path: '$.timestamp', format: 'epoch-ms' },
      metrics: [
        {
          name: 'Energy/Import',
          path: '$.registers[0].value',
          type: 'double',
          unit: 'kW.h',
          scale: 0.001,
          optional: false,
        },
        { name: 'Power/Active', path: '$.registers[1].value', type: 'int', unit: 'W', optional: false },
        { name: 'Voltage/L1', path: '$.voltage[0]', type: 'double', unit: 'V', optional: false },
      ],
    });
  }
  return mappings;
}
