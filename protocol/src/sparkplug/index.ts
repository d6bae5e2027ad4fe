export * from './metrics.ts';
export * from './payload.ts';
export * from './topic.ts';
