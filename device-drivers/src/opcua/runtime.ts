/**
 * Loads node-opcua on first use, with its own logging routed into ours. node-opcua is big (about 1.5 s to
 * load), so nothing imports it statically: an agent without an OPC UA driver never pays for it.
 *
 * node-opcua prints through its own console logger (node-opcua-debug), including a warning about RSA
 * PKCS#1 v1.5 on Node 20 the first time it signs anything. Its print functions are process-wide, so the
 * first caller's logger receives them: warnings at `debug` (they are advice to node-opcua's developers,
 * not to an operator), errors at `warn`. `DEBUG=<file>` tracing of node-opcua still goes to its own
 * console output, as its authors intend.
 */
import { format } from 'node:util';
import type { Logger } from '@citysense/protocol';

/** The node-opcua module. */
export type NodeOpcua = typeof import('node-opcua');

let loading: Promise<NodeOpcua> | undefined;

/** node-opcua, loaded once, its console output routed to `logger` (component `node-opcua`). */
export function loadNodeOpcua(logger: Logger): Promise<NodeOpcua> {
  loading ??= load(logger.child({ component: 'node-opcua' }));
  return loading;
}

async function load(log: Logger): Promise<NodeOpcua> {
  // node-opcua-debug is node-opcua's own logging module (one hoisted copy); routing it before node-opcua
  // loads also catches what node-opcua prints while loading.
  const debug = await import('node-opcua-debug');
  const print =
    (level: 'trace' | 'debug' | 'warn') =>
    (context?: unknown, ...args: unknown[]): void => {
      const source = (context as { filename?: unknown } | undefined)?.filename;
      log[level]({ source: typeof source === 'string' ? source : undefined }, format(...args));
    };
  debug.setWarningLogger(print('debug'));
  debug.setErrorLogger(print('warn'));
  debug.setDebugLogger(print('trace'));
  debug.setTraceLogger(print('trace'));
  return import('node-opcua');
}
