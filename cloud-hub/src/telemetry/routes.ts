import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { BucketSchema, resolveRange, TimeRangeQuery } from './query-params.ts';
import type { ReadingStore } from './reading-store.ts';

const ReadingsQuery = Type.Intersect([
  TimeRangeQuery,
  Type.Object({
    node: Type.String({ minLength: 1, maxLength: 64 }),
    device: Type.Optional(
      Type.String({
        maxLength: 64,
        description: "device id; '' or omitted with metric for node-level metrics",
      }),
    ),
    metric: Type.Optional(Type.String({ maxLength: 128 })),
    bucket: Type.Optional(BucketSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 10_000 })),
  }),
]);

/** `GET /v1/readings`: raw or bucketed series of one node (optionally one device and metric). */
export async function telemetryRoutes(app: FastifyInstance, deps: { store: ReadingStore }): Promise<void> {
  app.get<{ Querystring: Static<typeof ReadingsQuery> }>(
    '/v1/readings',
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Readings of a node, raw or bucketed (bucketed reads use the continuous aggregate)',
        querystring: ReadingsQuery,
      },
    },
    async (request) => {
      const q = request.query;
      const range = resolveRange(q);
      return deps.store.queryReadings({
        node: q.node,
        device: q.device,
        metric: q.metric,
        ...range,
        bucket: q.bucket,
        limit: q.limit ?? 10_000,
      });
    },
  );
}
