/** @citysense/algorithms: the algorithm package format, pre/post-processing and frame sources. */
export * from './manifest.ts';
export * from './package/algorithm-package.ts';
