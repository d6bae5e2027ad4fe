/** ONVIF: camera driver, WS-Discovery probe, Profile M analytics metadata parser and poller. */
export * from './discovery.ts';
export * from './errors.ts';
export * from './metadata.ts';
export * from './metadata-poller.ts';
export * from './onvif-driver.ts';
