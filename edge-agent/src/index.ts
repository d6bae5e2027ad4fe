/** @citysense/edge-agent: the agent that runs on lamp-pole gateways. */
export * from './agent.ts';
export * from './config.ts';
export * from './doctor/index.ts';
export * from './driver-host.ts';
export * from './drivers.ts';
export * from './enrollment.ts';
export * from './health.ts';
export * from './identity-store.ts';
// Types only: the runtime itself loads ONNX Runtime, so the agent imports it lazily when enabled.
export type * from './inference/index.ts';
export * from './record.ts';
export * from './recorder.ts';
export { Spool } from './spool/index.ts';
export * from './uplink/index.ts';
export { AGENT_VERSION } from './version.ts';
