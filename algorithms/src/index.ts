/** @citysense/algorithms: the algorithm package format, pre/post-processing and frame sources. */
export * from './adaptation.ts';
export * from './inference/index.ts';
export * from './manifest.ts';
export * from './package/algorithm-package.ts';
export * from './quality/index.ts';
export * from './sources/index.ts';
