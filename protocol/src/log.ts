import { type Logger as PinoLogger, pino } from 'pino';

/** The logger type used across citysense. */
export type Logger = PinoLogger;

const level = process.env.CITYSENSE_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info');

/** Root logger: JSON lines on stdout; `CITYSENSE_LOG_LEVEL` sets the level. */
export const rootLogger: Logger = pino({ level, base: { pid: process.pid } });

/** A child logger for one component, e.g. `componentLogger('spool')`. */
export function componentLogger(component: string, parent: Logger = rootLogger): Logger {
  return parent.child({ component });
}
