import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Spool } from '../spool/index.ts';
import { type Lane, SendScheduler } from './send-scheduler.ts';

describe('SendScheduler on a real spool', () => {
  let dir: string;
  let spool: Spool;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cs-sched-'));
    spool = new Spool({ dir, maxBytes: 8 * 1024 * 1024, policy: 'drop-oldest' });
    await spool.open();
  });
  afterEach(async () => {
    await spool.close();
    await rm(dir, { recursive: true, force: true });
  });

  const records = (n: number) => Array.from({ length: n }, (_, i) => new Uint8Array([i & 0xff, 1, 2, 3]));

  async function take(s: SendScheduler, n: number): Promise<Array<{ id: number; lane: Lane }>> {
    const out: Array<{ id: number; lane: Lane }> = [];
    for (let i = 0; i < n; i++) {
      const next = await s.next();
      if (!next) break;
      s.markSent(next.record.id, Date.now());
      out.push({ id: next.record.id, lane: next.lane });
    }
    return out;
  }

  it('drains backlog in order and gives live data every fourth slot', async () => {
    const backlogIds = await spool.appendMany(records(40));
    const s = new SendScheduler({ source: spool, window: 512, ackTimeoutMs: 1000 });
    s.beginSession();
    expect(s.liveBoundary).toBe(backlogIds[backlogIds.length - 1]);
    const liveIds = await spool.appendMany(records(10));
    const picks = await take(s, 20);
    const lanes = picks.map((p) => p.lane);
    expect(lanes.filter((l) => l === 'live')).toHaveLength(5);
    expect(lanes.slice(0, 8)).toEqual([
      'backlog',
      'backlog',
      'backlog',
      'live',
      'backlog',
      'backlog',
      'backlog',
      'live',
    ]);
    expect(picks.filter((p) => p.lane === 'backlog').map((p) => p.id)).toEqual(backlogIds.slice(0, 15));
    expect(picks.filter((p) => p.lane === 'live').map((p) => p.id)).toEqual(liveIds.slice(0, 5));
    // Once live runs dry the backlog gets every slot.
    const rest = await take(s, 100);
    expect(rest.filter((p) => p.lane === 'backlog').map((p) => p.id)).toEqual(backlogIds.slice(15));
    expect(s.hasBacklog).toBe(false);
  });

  it('holds at the window, and a rewind resends from the oldest unacked, skipping out-of-order acks', async () => {
    const ids = await spool.appendMany(records(20));
    const s = new SendScheduler({ source: spool, window: 8, ackTimeoutMs: 1000 });
    s.beginSession();
    const sent = await take(s, 100);
    expect(sent.map((p) => p.id)).toEqual(ids.slice(0, 8));
    expect(await s.next()).toBeNull();
    const acked = [
      { first: ids[2] as number, last: ids[3] as number },
      { first: ids[5] as number, last: ids[5] as number },
    ];
    expect(s.onAck(acked, Date.now() + 5)).toBe(3);
    await spool.ack(acked);
    expect(s.rttMs).toBeGreaterThanOrEqual(0);
    s.rewind();
    const resent = await take(s, 8);
    expect(resent.map((p) => p.id)).toEqual([0, 1, 4, 6, 7, 8, 9, 10].map((i) => ids[i]));
  });

  it('times out on the oldest unacked send, even while later records are acked', async () => {
    const ids = await spool.appendMany(records(3));
    const s = new SendScheduler({ source: spool, window: 8, ackTimeoutMs: 500 });
    s.beginSession();
    expect(s.msUntilAckTimeout(0)).toBeNull();
    await s.next();
    s.markSent(ids[0] as number, 1000);
    await s.next();
    s.markSent(ids[1] as number, 1100);
    expect(s.msUntilAckTimeout(1200)).toBe(300);
    s.onAck([{ first: ids[1] as number, last: ids[1] as number }], 1300);
    expect(s.msUntilAckTimeout(1400)).toBe(100);
    s.onAck([{ first: ids[0] as number, last: ids[0] as number }], 1450);
    expect(s.msUntilAckTimeout(1500)).toBeNull();
  });
});
