/** OPC UA client driver (node-opcua, loaded on first start): node maps or browse, monitored items → readings. */
export * from './browse.ts';
export * from './config.ts';
export * from './opcua-driver.ts';
export * from './runtime.ts';
export * from './values.ts';
