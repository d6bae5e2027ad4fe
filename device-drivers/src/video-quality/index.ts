/** Video quality diagnosis (clause 003 §7.3.2.4) of several cameras as one driver, with tiered alarms. */
export * from './alarm.ts';
export * from './config.ts';
export * from './video-quality-driver.ts';
