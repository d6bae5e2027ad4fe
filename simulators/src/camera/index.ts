export * from './mjpeg-camera.ts';
