/** "Its owner sees why": a device's refusals by the ledger, for its owner agency and the platform. */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth/access.ts';
import type { LedgerService } from '../ledger/ledger-service.ts';
import type { DeviceState } from '../ledger/ledger-store.ts';
import { LEDGER_WRITERS } from '../ledger/routes.ts';
import { ADMITTED_STATES, type LedgerAdmission } from './ledger-admission.ts';
import type { RefusalLog } from './refusal-log.ts';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const CodeParams = Type.Object({
  code: Type.String({ pattern: '^[0-9]{20}$', description: 'unified code (GB/T 28181 20-digit ID)' }),
});
const RefusalsSchema = Type.Object({
  code: Type.String(),
  state: Nullable(Type.String({ description: 'ledger state now; null when the ledger has no such device' })),
  ownerAgency: Nullable(Type.String()),
  enforce: Type.String({ description: 'ledger.enforce: off, video or all' }),
  admitted: Type.Boolean({ description: 'whether the ledger admits its data now' }),
  refusals: Type.Array(
    Type.Object({
      code: Type.String({ description: 'e.g. CS_ERR_LEDGER_NOT_ACTIVE' }),
      channel: Type.String({ description: 'video (GB/T 28181 REGISTER) or sensor (Sparkplug values)' }),
      reason: Type.String({ description: 'what to do, as of the last refusal' }),
      source: Type.String({ description: 'SIP peer or Sparkplug edge node that sent it last' }),
      count: Type.Integer({ description: 'refused REGISTERs or dropped values' }),
      firstAt: Type.String(),
      lastAt: Type.String(),
    }),
  ),
});

/** Dependencies of the refusal routes. */
export interface RefusalRouteDeps {
  ledger: LedgerService;
  admission: LedgerAdmission;
  refusals: RefusalLog;
}

/** `GET /v1/ledger/devices/:code/refusals`. */
export async function refusalRoutes(app: FastifyInstance, deps: RefusalRouteDeps): Promise<void> {
  app.get<{ Params: Static<typeof CodeParams> }>(
    '/v1/ledger/devices/:code/refusals',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['sensor ledger'],
        summary:
          "Data refused because of the device's ledger state: code, reason, count, first and last time",
        description:
          "The owner agency's operators and the platform admin read it; a code the ledger does not hold, the platform admin only.",
        security: [{ admin: [] }, { user: [] }],
        params: CodeParams,
        response: { 200: RefusalsSchema },
      },
    },
    async (request) => {
      requireRole(request, LEDGER_WRITERS);
      const { code } = request.params;
      const device = await deps.ledger.store.device(code);
      if (device) requireRole(request, LEDGER_WRITERS, { agencyId: device.ownerAgency });
      else requireRole(request, 'platform-admin');
      await deps.refusals.flush();
      const state: DeviceState | null = device?.state ?? null;
      return {
        code,
        state,
        ownerAgency: device?.ownerAgency ?? null,
        enforce: deps.admission.enforce,
        admitted: state !== null && ADMITTED_STATES.has(state),
        refusals: await deps.refusals.list(code),
      };
    },
  );
}
