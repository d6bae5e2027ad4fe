/** The simulated Modbus TCP devices of a lamp pole: power meter, drain water level, cabinet. */
export * from './simulator.ts';
export type { SimulatedPoint, SimulatedUnit } from './units.ts';
