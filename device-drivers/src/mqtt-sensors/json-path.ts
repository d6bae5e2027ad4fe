/**
 * A deliberately tiny JSON path: `$`, then `.name` and `[index]` steps (`$.data.pm25`,
 * `$.rxInfo[0].rssi`). No filters, wildcards or script: a mapping is data, never code,
 * so nothing a sensor sends can make the driver evaluate anything.
 */

/** One step of a compiled path: an object key or an array index. */
export type JsonPathStep = { key: string } | { index: number };

/** A path compiled once at start, evaluated for every message. */
export interface JsonPath {
  /** The path as written in the mapping, for messages. */
  readonly source: string;
  readonly steps: readonly JsonPathStep[];
}

const STEP = /\.([^.[\]]+)|\[(0|[1-9][0-9]{0,8})\]/y;

/** Compiles `source`; returns a message saying what is wrong instead when it is not a valid path. */
export function compileJsonPath(source: string): JsonPath | string {
  if (!source.startsWith('$')) return `"${source}" must start with "$" (e.g. "$.data.pm25")`;
  const steps: JsonPathStep[] = [];
  let at = 1;
  while (at < source.length) {
    STEP.lastIndex = at;
    const m = STEP.exec(source);
    if (!m) {
      return `"${source}" is not a path of ".name" and "[index]" steps (stuck at character ${at + 1})`;
    }
    if (m[1] !== undefined) steps.push({ key: m[1] });
    else steps.push({ index: Number(m[2]) });
    at = STEP.lastIndex;
  }
  return { source, steps };
}

/**
 * The value at `path` in `root`, or undefined when any step is missing. Only own keys of plain
 * objects and indexes of arrays are followed, so `$.__proto__` or `$.length` find nothing.
 */
export function evaluateJsonPath(root: unknown, path: JsonPath): unknown {
  let value: unknown = root;
  for (const step of path.steps) {
    if ('index' in step) {
      if (!Array.isArray(value) || step.index >= value.length) return undefined;
      value = value[step.index];
    } else {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
      if (!Object.hasOwn(value, step.key)) return undefined;
      value = (value as Record<string, unknown>)[step.key];
    }
  }
  return value;
}
