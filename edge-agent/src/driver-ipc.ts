/**
 * Messages between the agent and a driver running in its own process
 * (`isolation: 'process'`). The channel uses Node's `advanced` serialization
 * (structured clone), so `Uint8Array` values cross it unchanged.
 */
import type { DeviceDescriptor, DriverCapabilities, DriverFault, Reading } from '@citysense/device-drivers';

/** Where the child finds its driver registry: a module URL and the name of the exported registry. */
export interface DriverRegistryModule {
  /** `file:` URL (or specifier) of the module. */
  module: string;
  /** Name of the export holding a `DriverRegistry`. */
  exportName: string;
}

/** Agent → driver process. */
export type HostToChild =
  | {
      t: 'start';
      id: string;
      type: string;
      options: Record<string, unknown>;
      registry: DriverRegistryModule;
      /** Bound of the child's outgoing queue, in readings. */
      maxQueuedReadings: number;
    }
  | { t: 'stop' }
  | { t: 'devices' };

/** Driver process → agent. */
export type ChildToHost =
  | { t: 'started'; devices: DeviceDescriptor[]; capabilities: DriverCapabilities }
  | { t: 'start-failed'; code: string; message: string }
  | { t: 'readings'; batch: Reading[] }
  | { t: 'fault'; fault: DriverFault }
  | { t: 'devices'; devices: DeviceDescriptor[] }
  /** The driver emitted `error`: the host faults and restarts it. */
  | { t: 'error'; code: string; message: string }
  /** An uncaught exception or rejection; the child exits right after. */
  | { t: 'crash'; message: string }
  | { t: 'stopped' };
