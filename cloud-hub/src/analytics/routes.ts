import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { openToRoles } from '../algorithms/open-to-roles.ts';
import type { Role } from '../auth/roles.ts';
import { BucketSchema, resolveRange, TimeRangeQuery } from '../telemetry/query-params.ts';
import type { AnalyticsStore } from './analytics-store.ts';

const DetectionFilter = Type.Intersect([
  TimeRangeQuery,
  Type.Object({
    node: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'edge node id' })),
    source: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: 'video source id on the node' }),
    ),
    label: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: 'object class, e.g. person' }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 10_000 })),
  }),
]);
const CountQuery = Type.Intersect([DetectionFilter, Type.Object({ bucket: BucketSchema })]);
const AlertFilter = Type.Intersect([
  TimeRangeQuery,
  Type.Object({
    node: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    rule: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'local rule id' })),
    severity: Type.Optional(
      Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')]),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 })),
  }),
]);

const Box = Type.Object({
  left: Type.Number(),
  top: Type.Number(),
  right: Type.Number(),
  bottom: Type.Number(),
});
const DetectionSchema = Type.Object({
  time: Type.String({ format: 'date-time' }),
  node: Type.String(),
  source: Type.String(),
  algorithmId: Type.String(),
  algorithmVersion: Type.String(),
  label: Type.String(),
  classId: Type.Integer(),
  likelihood: Type.Number(),
  box: Box,
  objectId: Type.Integer(),
});
const AlertSchema = Type.Object({
  time: Type.String({ format: 'date-time' }),
  node: Type.String(),
  source: Type.String(),
  ruleId: Type.String(),
  kind: Type.String(),
  severity: Type.String(),
  algorithmId: Type.String(),
  algorithmVersion: Type.String(),
  count: Type.Integer(),
  heldSeconds: Type.Number(),
  message: Type.String(),
  objects: Type.Array(
    Type.Object({
      label: Type.String(),
      likelihood: Type.Number(),
      classId: Type.Integer(),
      box: Box,
      objectId: Type.Integer(),
    }),
  ),
});
const CountSchema = Type.Object({
  bucket: Type.String({ format: 'date-time' }),
  label: Type.String(),
  objects: Type.Integer(),
  frames: Type.Integer(),
  peak: Type.Integer(),
});

/** Video analytics reads: detections by node, source, class and time, and counts per bucket. */
export async function analyticsRoutes(app: FastifyInstance, deps: { store: AnalyticsStore }): Promise<void> {
  await app.register(async (scope) => {
    // Field engineers and algorithm admins read what the edge algorithms see.
    openToRoles(scope, ANALYTICS_ROLES);
    analyticsRoutesIn(scope, deps);
  });
}

/** Who reads detections and alerts besides the admin token. */
const ANALYTICS_ROLES: readonly Role[] = ['field-engineer', 'algorithm-admin', 'platform-admin'];

function analyticsRoutesIn(app: FastifyInstance, deps: { store: AnalyticsStore }): void {
  app.get<{ Querystring: Static<typeof DetectionFilter> }>(
    '/v1/analytics/detections',
    {
      schema: {
        tags: ['video analytics'],
        summary: 'Objects detected by edge algorithms (boxes normalised 0..1), oldest first',
        querystring: DetectionFilter,
        response: { 200: Type.Array(DetectionSchema) },
      },
    },
    async (request) => {
      const q = request.query;
      return deps.store.queryDetections({
        ...resolveRange(q),
        node: q.node,
        source: q.source,
        label: q.label,
        limit: q.limit,
      });
    },
  );
  app.get<{ Querystring: Static<typeof CountQuery> }>(
    '/v1/analytics/detection-counts',
    {
      schema: {
        tags: ['video analytics'],
        summary: 'Objects per class and time bucket: total, frames seen in, most in one frame',
        querystring: CountQuery,
        response: { 200: Type.Array(CountSchema) },
      },
    },
    async (request) => {
      const q = request.query;
      return deps.store.countDetections({
        ...resolveRange(q),
        node: q.node,
        source: q.source,
        label: q.label,
        limit: q.limit,
        bucket: q.bucket,
      });
    },
  );
  app.get<{ Querystring: Static<typeof AlertFilter> }>(
    '/v1/alerts',
    {
      schema: {
        tags: ['video analytics'],
        summary: 'Alerts nodes raised from their local rules, newest first',
        querystring: AlertFilter,
        response: { 200: Type.Array(AlertSchema) },
      },
    },
    async (request) => {
      const q = request.query;
      return deps.store.queryAlerts({
        ...resolveRange(q),
        node: q.node,
        source: q.source,
        rule: q.rule,
        severity: q.severity,
        limit: q.limit ?? 1000,
      });
    },
  );
}
