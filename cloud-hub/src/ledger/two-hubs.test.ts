import { generateSigningKey } from '@citysense/protocol';
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
import { LedgerService } from './ledger-service.ts';

describe.skipIf(shouldSkipPostgres())(postgresSuiteTitle('ledger: two hubs on one PostgreSQL server'), () => {
  let server: TestPostgres;
  let dbs: Database[];
  let hubs: LedgerService[];
  const actor = { kind: 'system' as const, id: 'test' };
  beforeAll(async () => {
    server = await startTestPostgres();
    dbs = [await openServerDatabase(server.url), await openServerDatabase(server.url)];
    await migrate(dbs[0] as Database);
    const key = generateSigningKey('sm2-sm3');
    hubs = dbs.map(
      (db) =>
        new LedgerService({
          db,
          signingKey: () => key,
          centreCode: '34020000',
          duplicateRadiusM: { '*': 0 },
        }),
    );
  }, 60_000);
  afterAll(async () => {
    for (const db of dbs ?? []) await db.close();
    await server?.stop();
  });

  it('keeps one gap-free chain and one winner per transition when both write at once', async () => {
    const [a, b] = hubs as [LedgerService, LedgerService];
    const registered = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).register(
          { kind: 'noise', ownerAgency: 'eco', longitude: 116 + i / 1000, latitude: 40 },
          actor,
        ),
      ),
    );
    expect(new Set(registered.map((r) => r.device.code)).size).toBe(40);
    const code = registered[0]?.device.code ?? '';
    const moves = await Promise.allSettled([
      a.transition(code, 'in-review', actor),
      b.transition(code, 'in-review', actor),
      a.transition(code, 'in-review', actor),
      b.transition(code, 'in-review', actor),
    ]);
    expect(moves.filter((m) => m.status === 'fulfilled')).toHaveLength(1);
    const report = await b.verify();
    expect(report).toMatchObject({ ok: true, entries: 41, devices: 40, head: { seq: 41 } });
  });
});
