import type { OnvifDriverOptions } from '@citysense/device-drivers';
import type { DriverRegistry } from './driver-host.ts';

/**
 * Built-in driver types. Modules load lazily, so an agent configured without a
 * simulator never imports it. Options are validated by each driver's `start`.
 */
export const builtinDrivers: DriverRegistry = {
  gb28181: async ({ id, options, logger }) => {
    const { Gb28181Driver } = await import('@citysense/device-drivers');
    return new Gb28181Driver({ id, config: { ...options }, logger });
  },
  'lamp-pole-sim': async ({ id, options, logger }) => {
    const { LampPoleSimulator } = await import('@citysense/simulators');
    return new LampPoleSimulator({ id, config: { ...options }, logger });
  },
  'load-generator': async ({ id, options, logger }) => {
    const { LoadGenerator } = await import('@citysense/simulators');
    return new LoadGenerator({ id, config: { ...options }, logger });
  },
  modbus: async ({ id, options, logger }) => {
    const { ModbusDriver } = await import('@citysense/device-drivers');
    return new ModbusDriver({ id, config: { ...options }, logger });
  },
  'mqtt-sensors': async ({ id, options, logger }) => {
    const { MqttSensorDriver } = await import('@citysense/device-drivers');
    return new MqttSensorDriver({ id, config: { ...options }, logger });
  },
  onvif: async ({ id, options, logger }) => {
    const { OnvifDriver } = await import('@citysense/device-drivers');
    // OnvifDriver has no options schema: a wrong address or password fails its start.
    return new OnvifDriver({ ...(options as Omit<OnvifDriverOptions, 'id' | 'logger'>), id, logger });
  },
  opcua: async ({ id, options, logger }) => {
    const { OpcUaDriver } = await import('@citysense/device-drivers');
    return new OpcUaDriver({ id, config: { ...options }, logger });
  },
  'video-quality': async ({ id, options, logger }) => {
    const { VideoQualityDriver } = await import('@citysense/device-drivers');
    return new VideoQualityDriver({ id, config: { ...options }, logger });
  },
};
