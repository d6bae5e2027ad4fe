/**
 * The agent's own recent log records, kept in memory for `log-tail` operations: a
 * fixed number of records in a ring (oldest overwritten first), each shortened, so
 * memory stays bounded however chatty a driver gets. Every record gets a cursor
 * (`seq`) so the hub can follow: ask again with `since` = the previous `next`.
 */
import {
  LOG_LEVELS,
  type Logger,
  type LogLevelName,
  type LogLine,
  type LogTailParams,
  type LogTailResult,
} from '@citysense/protocol';
import pino from 'pino';

/** pino's numeric levels. */
const LEVEL_VALUES: Record<LogLevelName, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};
/** Fields pino adds to every record; the rest of a record are its own fields. */
const BASE_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'component', 'v']);
/** Longest message and longest field value kept, in characters. */
const MAX_TEXT = 1000;
const MAX_FIELD = 200;

/** Options of the ring. */
export interface LogRingOptions {
  /** Records kept; default 2000. */
  capacity?: number;
  /** Least level recorded; default `info`. */
  level?: LogLevelName;
}

function levelName(value: number): LogLevelName {
  let name: LogLevelName = 'trace';
  for (const l of LOG_LEVELS) if (value >= LEVEL_VALUES[l]) name = l;
  return name;
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A bounded ring of log records; also a pino destination (`write` takes one JSON line). */
export class LogRing {
  readonly capacity: number;
  readonly level: LogLevelName;
  readonly #lines: Array<LogLine | undefined>;
  /** seq of the newest record; the ring holds seq (last - size, last]. */
  #last = 0;

  constructor(o: LogRingOptions = {}) {
    this.capacity = Math.max(1, o.capacity ?? 2000);
    this.level = o.level ?? 'info';
    this.#lines = new Array(this.capacity);
  }

  /** Takes one pino JSON line; lines that are not JSON are kept as messages. */
  write(chunk: string): boolean {
    for (const text of chunk.split('\n')) if (text.trim()) this.#add(text);
    return true;
  }

  #add(text: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(text) as Record<string, unknown>;
    } catch {
      record = { level: 30, time: Date.now(), msg: text };
    }
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) {
      if (BASE_FIELDS.has(k)) continue;
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      fields[k] =
        typeof v === 'number' || typeof v === 'boolean' || v === null ? v : shorten(s ?? '', MAX_FIELD);
    }
    const seq = ++this.#last;
    this.#lines[seq % this.capacity] = {
      seq,
      time: typeof record.time === 'number' ? record.time : Date.now(),
      level: levelName(typeof record.level === 'number' ? record.level : 30),
      component: typeof record.component === 'string' ? record.component : null,
      msg: shorten(typeof record.msg === 'string' ? record.msg : '', MAX_TEXT),
      ...(Object.keys(fields).length > 0 ? { fields } : {}),
    };
  }

  /** Cursor of the newest record (0 when empty). */
  get last(): number {
    return this.#last;
  }

  /**
   * The last `lines` records matching the filter, oldest first; with `since`, only
   * records after it (`gap` is true when some of those were already overwritten).
   */
  tail(p: Partial<LogTailParams>): LogTailResult {
    const min = LEVEL_VALUES[p.level ?? 'trace'];
    const oldest = Math.max(1, this.#last - this.capacity + 1);
    const from = p.since === undefined ? oldest : Math.max(oldest, p.since + 1);
    const gap = p.since !== undefined && p.since + 1 < oldest;
    const matched: LogLine[] = [];
    for (let seq = from; seq <= this.#last; seq++) {
      const line = this.#lines[seq % this.capacity];
      if (!line || line.seq !== seq) continue;
      if (LEVEL_VALUES[line.level] < min) continue;
      if (p.component && line.component !== p.component) continue;
      matched.push(line);
    }
    const limit = p.lines ?? 100;
    // Following: the oldest unseen first, so a follower never skips lines; otherwise the newest.
    const lines = p.since === undefined ? matched.slice(-limit) : matched.slice(0, limit);
    const next =
      p.since !== undefined && matched.length > limit
        ? (lines[lines.length - 1]?.seq ?? this.#last)
        : this.#last;
    return { lines, next, gap };
  }
}

/**
 * A logger that writes where `parent` writes (same level, same bindings) and also
 * into `ring` at the ring's level, so that the agent keeps its recent records even
 * when its stdout level is higher (or silent, as in tests).
 */
export function tapLogger(parent: Logger, ring: LogRing): Logger {
  const stream = (parent as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
    | pino.DestinationStream
    | undefined;
  const parentLevel = parent.level;
  const streams: pino.StreamEntry[] = [{ level: ring.level, stream: ring }];
  if (stream && parentLevel !== 'silent') streams.push({ level: parentLevel as pino.Level, stream });
  const levels = [ring.level, parentLevel].filter((l): l is LogLevelName => l in LEVEL_VALUES);
  const level = levels.reduce((a, b) => (LEVEL_VALUES[a] <= LEVEL_VALUES[b] ? a : b), ring.level);
  const { level: _ignored, ...bindings } = parent.bindings();
  return pino({ level, base: bindings }, pino.multistream(streams));
}
