/** @citysense/protocol: wire formats and the small shared kernel (errors, logging, crypto). */
export * from './assignments.ts';
export * from './crypto.ts';
export * from './errors.ts';
export * from './gb28181/index.ts';
export * from './gb28181-id.ts';
export * from './log.ts';
export * from './node-hardware.ts';
export * from './node-id.ts';
export * from './operations.ts';
export * from './ota.ts';
export * from './signing.ts';
export * from './sparkplug/index.ts';
export * from './spool-ack.ts';
export * from './video-analytics.ts';
