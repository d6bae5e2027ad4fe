import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { MessageBus } from '../broker/message-bus.ts';
import type { Database } from '../storage/database.ts';
import type { MetricsRegistry } from './metrics.ts';

/** `/health` (liveness with database round trip) and Prometheus `/metrics`. */
export async function opsRoutes(
  app: FastifyInstance,
  deps: {
    db: Database;
    bus: MessageBus;
    registry: MetricsRegistry;
    version: string;
    startedAt: number;
    onlineNodes: () => number;
  },
): Promise<void> {
  app.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'Hub health: database round trip, MQTT mode, online nodes',
        security: [],
        response: {
          200: Type.Object({
            status: Type.String(),
            version: Type.String(),
            uptimeS: Type.Number(),
            database: Type.Object({
              engine: Type.String(),
              timescale: Type.Boolean(),
              latencyMs: Type.Number(),
            }),
            mqtt: Type.Object({ mode: Type.String(), connectedClients: Type.Number() }),
            onlineNodes: Type.Number(),
          }),
          503: { $ref: 'Error#' },
        },
      },
    },
    async () => {
      const started = performance.now();
      await deps.db.query('SELECT 1');
      return {
        status: 'ok',
        version: deps.version,
        uptimeS: Math.round((Date.now() - deps.startedAt) / 1000),
        database: {
          engine: deps.db.features.engine,
          timescale: deps.db.features.timescale,
          latencyMs: +(performance.now() - started).toFixed(2),
        },
        mqtt: { mode: deps.bus.mode, connectedClients: deps.bus.connectedClients() },
        onlineNodes: deps.onlineNodes(),
      };
    },
  );
  app.get(
    '/metrics',
    { schema: { tags: ['operations'], summary: 'Prometheus metrics', security: [] } },
    async (_request, reply) => reply.type('text/plain; version=0.0.4').send(deps.registry.render()),
  );
}
