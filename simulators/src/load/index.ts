/** Synthetic load for the ingest benchmark. */
export * from './config.ts';
export * from './generator.ts';
export * from './sequence.ts';
