export * from './mjpeg-camera.ts';
export * from './onvif/index.ts';
