/** RTMP ingest, HTTP-FLV/RTMP/MPEG-TS playback, and a publisher for in-memory H.264/H.265 streams. */
export * from './elementary-publisher.ts';
export * from './errors.ts';
export * from './media-server.ts';
