/** GB/T 28181 cascade: a gateway registered upward as a lower-level platform, serving its cameras' catalog. */
export * from './cascade.ts';
export * from './cascade-catalog.ts';
export * from './errors.ts';
export * from './live-forwarder.ts';
