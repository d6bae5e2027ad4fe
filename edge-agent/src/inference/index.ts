/** The agent's inference runtime: assignments from the hub → packages → models → analytics frames. */
export * from './analytics-frame.ts';
export * from './assignment-sync.ts';
export * from './deployment-unit.ts';
export * from './errors.ts';
export * from './hub-client.ts';
export * from './inference-stats.ts';
export * from './model-slot.ts';
export * from './package-cache.ts';
export * from './package-download.ts';
export * from './runtime.ts';
export * from './source-runner.ts';
export * from './status-reporter.ts';
export * from './verify-package.ts';
