/** @citysense/cloud-hub: the hub (HTTP API, MQTT, storage, Sparkplug host). */
export { adminTokenPath } from './admin-token.ts';
export { centreKeyPath } from './algorithms/centre-key.ts';
export { type HubConfig, HubConfigSchema } from './config.ts';
export { Hub, type HubEndpoints } from './hub.ts';
export { HUB_VERSION } from './version.ts';
