/** Simulated NB-IoT, LoRaWAN and meter uplinks over MQTT, with the driver mappings that read them. */
export * from './config.ts';
export * from './mappings.ts';
export * from './simulator.ts';
