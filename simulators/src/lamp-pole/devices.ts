import type { DeviceDescriptor, MetricDescriptor } from '@citysense/device-drivers';
import type { LampPoleSensor } from './config.ts';
import type { PoleConditions } from './environment.ts';

/** How one metric is read off the pole's conditions: converters as data. */
export type LampPoleMetricSpec =
  | (MetricDescriptor & {
      type: 'double';
      /** Physical range the sensor reports; outside it a reading is a fault. */
      range: readonly [number, number];
      /** Decimal places the sensor resolves. */
      digits: number;
      read: (c: PoleConditions) => number;
    })
  | (MetricDescriptor & { type: 'bool'; read: (c: PoleConditions) => boolean });

/** One sensor set on the pole and the Sparkplug device it becomes. */
export interface LampPoleDeviceSpec {
  sensor: LampPoleSensor;
  /** Sparkplug device id, `${poleId}.${sensor}`. */
  id: string;
  kind: string;
  metrics: LampPoleMetricSpec[];
}

type SensorTemplate = Omit<LampPoleDeviceSpec, 'id'>;

const SENSOR_TEMPLATES: Record<LampPoleSensor, SensorTemplate> = {
  air: {
    sensor: 'air',
    kind: 'air-quality',
    metrics: [
      { name: 'PM2.5', type: 'double', unit: 'ug/m3', range: [0, 1000], digits: 1, read: (c) => c.pm25 },
      { name: 'PM10', type: 'double', unit: 'ug/m3', range: [0, 2000], digits: 1, read: (c) => c.pm10 },
    ],
  },
  noise: {
    sensor: 'noise',
    kind: 'noise',
    metrics: [
      { name: 'LAeq', type: 'double', unit: 'dB(A)', range: [25, 130], digits: 1, read: (c) => c.laeq },
    ],
  },
  weather: {
    sensor: 'weather',
    kind: 'weather',
    metrics: [
      {
        name: 'Temperature',
        type: 'double',
        unit: 'Cel',
        range: [-40, 60],
        digits: 1,
        read: (c) => c.temperature,
      },
      { name: 'Humidity', type: 'double', unit: '%RH', range: [0, 100], digits: 1, read: (c) => c.humidity },
    ],
  },
  water: {
    sensor: 'water',
    kind: 'water-level',
    metrics: [
      { name: 'Level', type: 'double', unit: 'm', range: [0, 5], digits: 3, read: (c) => c.waterLevel },
    ],
  },
  manhole: {
    sensor: 'manhole',
    kind: 'manhole-cover',
    metrics: [
      { name: 'Tilt', type: 'double', unit: 'deg', range: [0, 90], digits: 2, read: (c) => c.manholeTilt },
      { name: 'Open', type: 'bool', read: (c) => c.manholeOpen },
    ],
  },
  pole: {
    sensor: 'pole',
    kind: 'pole-tilt',
    metrics: [
      { name: 'Tilt', type: 'double', unit: 'deg', range: [0, 10], digits: 3, read: (c) => c.poleTilt },
    ],
  },
  lamp: {
    sensor: 'lamp',
    kind: 'street-lamp',
    metrics: [
      { name: 'Power', type: 'double', unit: 'W', range: [0, 250], digits: 1, read: (c) => c.lampPower },
      { name: 'On', type: 'bool', read: (c) => c.lampOn },
    ],
  },
};

/** The device specs of a pole carrying `sensors`, in the order given. */
export function lampPoleDevices(poleId: string, sensors: readonly LampPoleSensor[]): LampPoleDeviceSpec[] {
  return sensors.map((sensor) => ({ ...SENSOR_TEMPLATES[sensor], id: `${poleId}.${sensor}` }));
}

/** The public descriptor of a device spec (no ranges or converters). */
export function describeDevice(spec: LampPoleDeviceSpec): DeviceDescriptor {
  return {
    id: spec.id,
    kind: spec.kind,
    metrics: spec.metrics.map((m) => ({ name: m.name, type: m.type, unit: m.unit })),
  };
}

/** The value a healthy sensor reports: clamped to its range and rounded to its resolution. */
export function sensorValue(metric: LampPoleMetricSpec, c: PoleConditions): number | boolean {
  if (metric.type === 'bool') return metric.read(c);
  const [min, max] = metric.range;
  const scale = 10 ** metric.digits;
  return Math.round(Math.min(max, Math.max(min, metric.read(c))) * scale) / scale;
}
