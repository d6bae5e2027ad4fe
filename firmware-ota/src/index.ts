/** @citysense/firmware-ota: signed OTA artifacts, A/B slots, health check and rollback; see README.md. */
export * from './artifact.ts';
export * from './errors.ts';
