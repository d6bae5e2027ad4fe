/** MQTT sensors (NB-IoT, LoRaWAN, meters) publishing JSON on their own topics, mapped to readings as data. */
export * from './config.ts';
export { compileJsonPath, evaluateJsonPath, type JsonPath, type JsonPathStep } from './json-path.ts';
export type { PayloadProblemKind } from './mapping.ts';
export * from './mqtt-sensor-driver.ts';
