/**
 * The one interface every citysense driver implements: real field drivers
 * (ONVIF, GB/T 28181, OPC UA, Modbus, MQTT sensors) and the simulators that stand
 * in for them. The edge agent hosts drivers; it never knows which kind it runs.
 */

/** Value types a reading can carry; each maps to one Sparkplug datatype (`bytes`: encoded messages such as video analytics frames). */
export type MetricType = 'double' | 'int' | 'bool' | 'string' | 'bytes';

/** Data quality of a reading (OPC UA / Sparkplug convention). */
export type Quality = 'good' | 'uncertain' | 'bad';

/** One metric a device produces. */
export interface MetricDescriptor {
  /** Sparkplug metric name, e.g. `Air/PM2.5`. */
  name: string;
  type: MetricType;
  /** UCUM-style unit, e.g. `ug/m3`, `dB(A)`, `Cel`. */
  unit?: string | undefined;
}

/** One device behind a driver (a sensor, a camera channel, a PLC). */
export interface DeviceDescriptor {
  /** Sparkplug device id, unique on the node. */
  id: string;
  /** What it is, e.g. `air-quality`, `water-level`. */
  kind: string;
  metrics: MetricDescriptor[];
}

/** One timestamped value of one metric of one device. */
export interface Reading {
  device: string;
  metric: string;
  /** Milliseconds since the epoch, source time. */
  time: number;
  value: number | boolean | string | Uint8Array;
  quality: Quality;
}

/** A fault a driver reports without stopping (sensor stuck, link lost, out of range). */
export interface DriverFault {
  device?: string | undefined;
  code: string;
  message: string;
}

/** Events a driver emits. */
export interface DriverEvents {
  readings: (batch: Reading[]) => void;
  fault: (fault: DriverFault) => void;
}

/** What a driver can do, so the host and the hub know without probing. */
export interface DriverCapabilities {
  /** Produces readings on its own schedule. */
  telemetry: boolean;
  /** Accepts writes (DCMD). */
  commands: boolean;
}

/** The driver contract. Constructors only assign; `start` does the work. */
export interface Driver {
  /** Instance id, unique in the agent, e.g. `lamp-pole-sim`. */
  readonly id: string;
  readonly capabilities: DriverCapabilities;
  /** Devices and their metrics; valid after `start` resolves. */
  devices(): DeviceDescriptor[];
  /** Starts producing; resolves when devices are known. Idempotent. */
  start(signal?: AbortSignal): Promise<void>;
  /** Stops producing and releases resources. Idempotent. */
  stop(): Promise<void>;
  on<E extends keyof DriverEvents>(event: E, listener: DriverEvents[E]): this;
  off<E extends keyof DriverEvents>(event: E, listener: DriverEvents[E]): this;
}
