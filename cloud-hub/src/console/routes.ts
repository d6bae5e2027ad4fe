import { errorMessage } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { can, requireUser } from '../auth/access.ts';
import type { HttpPrincipal } from '../http/server.ts';
import type { FeedEvent, LiveFeed } from './live-feed.ts';

const err = { $ref: 'Error#' };
const config = { auth: 'user' } as const;
const tags = ['console'];

const SummarySchema = Type.Object({
  at: Type.String({ format: 'date-time' }),
  nodes: Type.Object({ online: Type.Integer(), total: Type.Integer() }),
  alarms: Type.Object({
    open: Type.Integer(),
    bySeverity: Type.Record(Type.String(), Type.Integer()),
  }),
  ingest: Type.Object({
    readingsPerSecond: Type.Number({ description: 'readings committed per second over the window' }),
    windowS: Type.Integer(),
  }),
});

const ConsoleConfigSchema = Type.Object({
  hubId: Type.String(),
  version: Type.String(),
  basemap: Type.Object({
    tileUrl: Type.Union([Type.String(), Type.Null()], {
      description: 'XYZ tile template; null = the bundled offline grid and district outlines',
    }),
    attribution: Type.Union([Type.String(), Type.Null()]),
  }),
});

/** Dependencies of the console routes. */
export interface ConsoleRouteDeps {
  feed: LiveFeed;
  hubId: string;
  version: string;
  tileUrl: string | undefined;
  tileAttribution: string | undefined;
  /** Heartbeat comment interval on event streams; default 15 s (below common proxy idle timeouts). */
  heartbeatMs?: number;
}

/** Whether `principal` may receive `e` (roles, and the agency of agency-bound roles). */
export function mayReceive(principal: HttpPrincipal, e: FeedEvent): boolean {
  if (!e.roles) return true;
  if (can(principal, 'platform-admin')) return true;
  const scope = e.agencyId ? { agencyId: e.agencyId } : {};
  return can(principal, e.roles, scope);
}

/**
 * `GET /v1/health/summary`, `GET /v1/console/config` and the live event stream
 * `GET /v1/events` (text/event-stream, WHATWG HTML §9.2).
 *
 * The stream is authenticated like every /v1 route, with `Authorization: Bearer`: the
 * console reads it with `fetch()` and a stream reader rather than `EventSource`, so the
 * session token never travels in a URL (server logs, proxies, history) and no cookie
 * (with its CSRF surface) is needed. curl -N -H 'Authorization: Bearer …' works too.
 */
export async function consoleRoutes(app: FastifyInstance, deps: ConsoleRouteDeps): Promise<void> {
  const { feed } = deps;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const open = new Set<() => void>();

  app.get(
    '/v1/health/summary',
    {
      config,
      schema: {
        tags,
        summary: 'Platform health for the console header: nodes online, alarms open, ingest rate',
        response: { 200: SummarySchema, 401: err, 403: err },
      },
    },
    async (request) => {
      requireUser(request);
      return feed.summary();
    },
  );

  app.get(
    '/v1/console/config',
    {
      config,
      schema: {
        tags,
        summary: 'What the web console needs to know about this hub (basemap tiles, version)',
        response: { 200: ConsoleConfigSchema, 401: err, 403: err },
      },
    },
    async (request) => {
      requireUser(request);
      return {
        hubId: deps.hubId,
        version: deps.version,
        basemap: { tileUrl: deps.tileUrl ?? null, attribution: deps.tileAttribution ?? null },
      };
    },
  );

  app.get(
    '/v1/events',
    {
      config,
      schema: {
        tags,
        summary: 'Live events (server-sent events): summary, node, alarm, rollout',
        description:
          'text/event-stream. `summary` at once and on change; `node` {id, online}; `alarm` {id, change: raised|cleared, severity, node, ruleName}; `rollout` {id, state, stage, total, counts}. Each user receives what their roles may see. Send Authorization: Bearer like any /v1 call.',
        response: { 401: err, 403: err },
      },
    },
    async (request, reply) => {
      const who = requireUser(request);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const send = (event: string, data: unknown) =>
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      res.write('retry: 3000\n\n');
      const unsubscribe = feed.subscribe((e) => {
        if (mayReceive(who, e)) send(e.event, e.data);
      });
      // Sample before the first summary: what changes after the client has it arrives as events.
      await feed.poll();
      send('summary', await feed.summary());
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
      heartbeat.unref();
      const close = () => {
        clearInterval(heartbeat);
        unsubscribe();
        open.delete(close);
        if (!res.writableEnded) res.end();
      };
      open.add(close);
      request.raw.on('close', close);
      res.on('error', (e) => {
        request.log.debug({ err: errorMessage(e) }, 'event stream write failed');
        close();
      });
    },
  );

  // Streams never end on their own: end them so that the server can close.
  app.addHook('preClose', async () => {
    for (const close of [...open]) close();
  });
}
