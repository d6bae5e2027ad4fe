/** The simulated lamp-pole sensor set. */
export * from './config.ts';
export { LAMP_POLE_FAULT_CODES } from './faults.ts';
export * from './simulator.ts';
