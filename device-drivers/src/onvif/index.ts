/** ONVIF: camera driver, WS-Discovery probe and Profile M analytics metadata parser. */
export * from './discovery.ts';
export * from './errors.ts';
export * from './metadata.ts';
export * from './onvif-driver.ts';
