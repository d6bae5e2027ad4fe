/**
 * @citysense/device-drivers: the driver interface, the emitter and config helpers
 * drivers share, and conformance checks. The vitest contract suite lives in
 * `./contract.ts` and is imported by tests only (runtime code must not load vitest).
 */
export * from './config.ts';
export * from './conformance.ts';
export * from './driver.ts';
export * from './gb28181/cascade/index.ts';
export * from './gb28181/device/index.ts';
export * from './gb28181/driver/index.ts';
export * from './gb28181/media/index.ts';
export * from './gb28181/platform/index.ts';
export { SipEndpoint, type SipEndpointOptions } from './gb28181/sip/endpoint.ts';
export * as sip from './gb28181/sip/index.ts';
export type { SipPeer, SipTransportKind } from './gb28181/sip/transport.ts';
export * from './lifecycle.ts';
export * from './modbus/index.ts';
export * from './mqtt-sensors/index.ts';
export * from './onvif/index.ts';
export * from './opcua/index.ts';
export * from './rtmp/index.ts';
export * from './typed-emitter.ts';
export * from './video-quality/index.ts';
