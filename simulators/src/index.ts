/**
 * @citysense/simulators: drivers that stand in for real field devices, implementing
 * the same Driver interface so every test and demo can swap one for the other.
 */
export * from './camera/index.ts';
export * from './lamp-pole/index.ts';
export * from './load/index.ts';
export * from './modbus/index.ts';
export * from './mqtt-sensors/index.ts';
export * from './opcua/index.ts';
export { SeededRandom } from './random.ts';
