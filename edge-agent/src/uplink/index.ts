export * from './birth-catalog.ts';
export * from './record-source.ts';
export * from './send-scheduler.ts';
export * from './sequence.ts';
export * from './uplink.ts';
