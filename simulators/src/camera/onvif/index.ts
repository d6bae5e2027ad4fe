/** The simulated ONVIF camera and its parts (WS-Discovery responder, RTSP server, Profile M metadata). */
export * from './metadata-stream.ts';
export * from './onvif-camera.ts';
export * from './rtsp-server.ts';
export { WS_DISCOVERY_MULTICAST, WsDiscoveryResponder } from './ws-discovery-responder.ts';
