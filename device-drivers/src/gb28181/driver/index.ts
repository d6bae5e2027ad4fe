/** GB/T 28181 hosted by the edge agent: the cameras on a pole as one driver, optionally cascaded upward. */
export * from './alarm.ts';
export * from './config.ts';
export * from './gb28181-driver.ts';
