import { hasCode } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../storage/database.ts';
import { migrate } from '../storage/migrate.ts';
import { openServerDatabase } from '../storage/server.ts';
import {
  postgresSuiteTitle,
  shouldSkipPostgres,
  startTestPostgres,
  type TestPostgres,
} from '../storage/test-postgres.ts';
import { CarrierStore } from './carrier-store.ts';

describe.skipIf(shouldSkipPostgres())(
  postgresSuiteTitle('carriers: concurrent approvals on one PostgreSQL server'),
  () => {
    let server: TestPostgres;
    let db: Database;
    let store: CarrierStore;
    const owner = { name: 'lampop', agencyId: 'lamps' };

    beforeAll(async () => {
      server = await startTestPostgres();
      db = await openServerDatabase(server.url);
      await migrate(db);
      await db.query(`INSERT INTO agencies (id, name) VALUES ('lamps', 'Lamps'), ('police', 'Police')`);
      store = new CarrierStore(db);
    }, 60_000);
    afterAll(async () => {
      await db?.close();
      await server?.stop();
    });

    it('books no more than the pole offers when many approvals race on separate connections', async () => {
      await store.createPole({
        id: 'RACE-1',
        kind: 'lamp',
        ownerAgency: 'lamps',
        longitude: 116.4,
        latitude: 39.9,
        powerBudgetW: 1000,
        slots: 3,
      });
      const applications = [];
      for (let i = 0; i < 8; i++)
        applications.push(
          await store.createApplication(
            {
              kind: 'mount',
              poleId: 'RACE-1',
              applicantAgency: 'police',
              ownerAgency: 'lamps',
              deviceCode: `3402000000180000${String(i).padStart(4, '0')}`,
              powerW: 10,
              slots: 1,
            },
            { name: 'policeop', agencyId: 'police' },
          ),
        );
      const outcomes = await Promise.allSettled(applications.map((a) => store.approve(a.id, owner, null)));
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
      const refused = outcomes.filter((o) => o.status === 'rejected');
      expect(refused).toHaveLength(5);
      for (const o of refused) expect(hasCode(o.reason, 'CS_ERR_CARRIER_FULL')).toBe(true);
      const pole = await store.requirePole('RACE-1');
      expect(pole).toMatchObject({ slotsUsed: 3, freeSlots: 0, powerUsedW: 30, freePowerW: 970 });
      expect((await store.mounted('RACE-1')).devices).toHaveLength(3);
    });
  },
);
