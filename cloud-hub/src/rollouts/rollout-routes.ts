/**
 * HTTP pieces every staged rollout's API shares (deployments/routes.ts,
 * ota/routes.ts): schemas of its transitions, node rows, report replies and admin
 * actions, and the route that applies an action.
 */
import { type Static, type TObject, type TProperties, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RouteAuth } from '../http/server.ts';

/** `schema` or null. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
/** A timestamp on the wire. */
export const DateTime = Type.String({ format: 'date-time' });
/** A node (or agency) id. */
export const EntityId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' });
/** An id of a rollout (`dep_…`, `ota_…`). */
export const rolloutIdSchema = (description: string) =>
  Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description });

/** One recorded transition; `actor` says who may appear. */
export const rolloutEventSchema = (actorDescription: string) =>
  Type.Object({
    nodeId: Nullable(Type.String()),
    fromState: Nullable(Type.String()),
    toState: Type.String(),
    actor: Type.String({ description: actorDescription }),
    reason: Nullable(Type.String()),
    at: DateTime,
  });

/** A target node as the API shows it: the shared columns around the kind's own (`own`). */
export const rolloutNodeSchema = <P extends TProperties>(
  nodeState: TSchema,
  own: P,
  progressDescription?: string,
) =>
  Type.Object({
    nodeId: Type.String(),
    canary: Type.Boolean(),
    state: nodeState,
    progress: Nullable(Type.Number(progressDescription ? { description: progressDescription } : {})),
    reason: Nullable(Type.String()),
    code: Nullable(Type.String()),
    reportedRevision: Nullable(Type.Integer()),
    ...own,
    reportedAt: Nullable(DateTime),
    updatedAt: DateTime,
  });

/** Where a rollout is: its state, why, and the stage the gate clock runs for. */
export const rolloutStateFields = (state: TSchema) => ({
  state,
  reason: Nullable(Type.String({ description: 'why it is in its state' })),
  stage: Type.Union([Type.Literal('canary'), Type.Literal('rolling')]),
  stageStartedAt: DateTime,
});

/** Who made a rollout and when, and its target nodes counted per state. */
export const rolloutCountFields = {
  createdBy: Type.String(),
  createdAt: DateTime,
  updatedAt: DateTime,
  total: Type.Integer({ description: 'target nodes' }),
  counts: Type.Record(Type.String(), Type.Integer(), { description: 'target nodes per state' }),
};

/** The reply to a node's report; `rolloutState` names the rollout's state field. */
export const reportReplySchema = <P extends TProperties>(nodeState: TSchema, rolloutState: P) =>
  Type.Object({
    applied: Type.Boolean({ description: 'false for a stale report: accepted, but it changed nothing' }),
    ignoredBecause: Type.Optional(Type.Union([Type.Literal('stale-revision'), Type.Literal('not-assigned')])),
    state: nodeState,
    ...rolloutState,
  });

/** Body of an admin action: an optional note. */
export const ActionNote = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 2000, description: 'recorded with the transition' })) },
  { additionalProperties: false },
);

/** Lets a client POST without a body where every body field is optional. */
export const emptyBodyAsObject = async (request: FastifyRequest) => {
  request.body ??= {};
};

/** A request to apply an admin action. */
export type ActionRequest = FastifyRequest<{ Params: { id: string }; Body: Static<typeof ActionNote> }>;

/**
 * Registers `POST <base>/:id/<action>` for each action of a rollout kind: the body
 * is an optional note, the reply the rollout in detail.
 */
export function rolloutActionRoutes<A extends string>(
  app: FastifyInstance,
  spec: {
    base: string;
    actions: Record<A, readonly string[]>;
    summaries: Record<A, string>;
    /** The rollout in the description (`deployment`) and the code of a refused action. */
    noun: string;
    stateCode: string;
    tag: string;
    params: TObject;
    detail: TSchema;
    errors: Record<number, unknown>;
    /** Who may reach the routes, when not the default (admin). */
    auth?: RouteAuth;
    act: (request: ActionRequest, action: A, reply: FastifyReply) => Promise<unknown>;
  },
): void {
  for (const action of Object.keys(spec.actions) as A[]) {
    app.post<{ Params: { id: string }; Body: Static<typeof ActionNote> }>(
      `${spec.base}/:id/${action}`,
      {
        ...(spec.auth ? { config: { auth: spec.auth } } : {}),
        schema: {
          tags: [spec.tag],
          summary: spec.summaries[action],
          description: `Allowed when the ${spec.noun} is ${spec.actions[action].join(', ')}; otherwise 409 ${spec.stateCode}.`,
          params: spec.params,
          body: ActionNote,
          response: { 200: spec.detail, ...spec.errors },
        },
        preValidation: emptyBodyAsObject,
      },
      async (request, reply) => spec.act(request, action, reply),
    );
  }
}
