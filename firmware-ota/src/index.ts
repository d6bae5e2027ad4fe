/** @citysense/firmware-ota: signed OTA artifacts, A/B slots, health check and rollback; see README.md. */
export * from './artifact.ts';
export * from './atomic-file.ts';
export * from './bootloader.ts';
export * from './compat.ts';
export * from './errors.ts';
export * from './ranged-download.ts';
export * from './slots.ts';
export * from './supervisor.ts';
export * from './trial.ts';
