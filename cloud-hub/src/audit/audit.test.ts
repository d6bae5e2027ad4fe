import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../storage/database.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import { AuditLog } from './audit-log.ts';

const actor = { kind: 'admin' as const, id: null, username: 'admin', agencyId: null };

describe('audit log', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub();
  });
  afterAll(async () => t?.stop());

  it('refuses UPDATE, DELETE and TRUNCATE, even through direct SQL', async () => {
    const log = new AuditLog({ db: t.hub.db });
    log.record({ actor, action: 'test.append', targetType: 'thing', targetId: 'one', after: { n: 1 } });
    await log.flush();
    const before = await t.hub.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log');
    for (const sql of [
      `UPDATE audit_log SET action = 'test.forged' WHERE action = 'test.append'`,
      `DELETE FROM audit_log WHERE action = 'test.append'`,
      'TRUNCATE audit_log',
    ])
      await expect(t.hub.db.query(sql), sql).rejects.toThrow(/append-only/);
    const after = await t.hub.db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log');
    expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
    const kept = await log.query({ action: 'test.append' });
    expect(kept.entries.map((e) => [e.targetId, e.after])).toEqual([['one', { n: 1 }]]);
  });

  it('pages through entries and filters by action prefix over HTTP', async () => {
    const log = new AuditLog({ db: t.hub.db });
    for (let i = 0; i < 5; i++)
      log.record({ actor, action: `page.${i % 2 ? 'odd' : 'even'}`, targetId: `p${i}` });
    await log.flush();
    const seen: string[] = [];
    let after: number | null = 0;
    while (after !== null) {
      const res: { status: number; body: { entries: Array<{ targetId: string }>; next: number | null } } =
        await t.api('GET', `/v1/audit?action=page.*&limit=2&after=${after}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.entries.map((e) => e.targetId));
      after = res.body.next;
    }
    expect(seen).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    const odd = await t.api<{ entries: Array<{ targetId: string }> }>('GET', '/v1/audit?action=page.odd');
    expect(odd.body.entries.map((e) => e.targetId)).toEqual(['p1', 'p3']);
    const future = await t.api<{ entries: unknown[] }>(
      'GET',
      `/v1/audit?since=${new Date(Date.now() + 60_000).toISOString()}`,
    );
    expect(future.body.entries).toEqual([]);
  });

  it('never throws into the caller when the database fails: it logs and counts', async () => {
    const broken = {
      query: () => Promise.reject(new Error('disk full')),
    } as unknown as Database;
    const log = new AuditLog({ db: broken });
    expect(() => log.record({ actor, action: 'test.lost' })).not.toThrow();
    log.record({ actor, action: 'test.lost' });
    await log.flush();
    expect(log.failed).toBe(2);
  });
});
