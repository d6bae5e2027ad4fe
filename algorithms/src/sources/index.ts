/** Frame sources for edge inference: still images, image folders, and anything ffmpeg can read. */
export * from './errors.ts';
export * from './ffmpeg-path.ts';
export type { Backpressure } from './ffmpeg-session.ts';
export * from './ffmpeg-stream.ts';
export * from './frame.ts';
export * from './image-file.ts';
export * from './image-folder.ts';
export * from './open.ts';
export { redactCredentials } from './spec.ts';
