export * from './gb28181/index.ts';
export * from './mjpeg-camera.ts';
export * from './onvif/index.ts';
