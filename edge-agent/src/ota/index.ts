/** The agent's OTA updater (agent software and gateway firmware); see edge-agent/README.md. */
export * from './ota-client.ts';
export * from './updater.ts';
