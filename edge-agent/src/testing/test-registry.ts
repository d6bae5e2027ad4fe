/** Driver registry of the test driver, for driver processes in tests (`processRegistry`). Test support only. */
import type { DriverRegistry } from '../driver-host.ts';
import type { DriverRegistryModule } from '../driver-ipc.ts';
import { TestDriver } from './test-driver.ts';

/** Every driver type the tests configure maps to the test driver. */
export const testDriverRegistry: DriverRegistry = {
  'lamp-pole-sim': ({ id, options }) => new TestDriver({ id, ...(options as object) }),
  'load-generator': ({ id, options }) => new TestDriver({ id, ...(options as object) }),
};

/** Where a driver process finds `testDriverRegistry`. */
export const TEST_REGISTRY_MODULE: DriverRegistryModule = {
  module: new URL('./test-registry.ts', import.meta.url).href,
  exportName: 'testDriverRegistry',
};
