/** @citysense/algorithms: see README.md; this package has no code yet. */
export {};
