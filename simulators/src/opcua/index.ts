/** The simulated lamp-pole PLC as an OPC UA server. */
export * from './config.ts';
export * from './opcua-simulator.ts';
export * from './plc.ts';
