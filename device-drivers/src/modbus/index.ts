/** Modbus TCP driver: register maps as data, per-unit polling and timeouts, coded faults. */
export * from './codec.ts';
export * from './config.ts';
export * from './errors.ts';
export * from './modbus-driver.ts';
export { MAX_READ, planReads, type ReadBlock } from './read-plan.ts';
