/** Simulated GB/T 28181 IPC / NVR: registers with a platform, answers queries, streams PS over RTP. */
export * from './errors.ts';
export * from './gb28181-camera.ts';
