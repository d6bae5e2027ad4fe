/** The GB/T 28181 platform: registrar, keepalive, queries, alarms, subscriptions and live dialogs. */
export * from './platform.ts';
export * from './query-waiter.ts';
export * from './registrar.ts';
export * from './ssrc.ts';
export type { DeviceSubscription, SubscriptionKind } from './subscriptions.ts';
