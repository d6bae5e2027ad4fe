/** The GB/T 28181 device side: registration, keepalive, queries, alarms, subscriptions and live INVITEs. */
export * from './channels.ts';
export * from './device.ts';
export * from './errors.ts';
export * from './live-media.ts';
export type { GbLiveSession, GbLiveSessionEnd, GbLiveSessionState } from './live-sessions.ts';
export * from './options.ts';
export type { DeviceIdentity } from './queries.ts';
export * from './registration.ts';
