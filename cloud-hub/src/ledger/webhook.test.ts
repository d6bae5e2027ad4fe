import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import { entryHash, type LedgerEntry } from './chain.ts';
import type { WebhookStatus } from './webhook.ts';

/** The city big-data platform's receiver: answers `fail` while it is set, records what it accepted. */
class Receiver extends EventEmitter {
  fail = true;
  requests = 0;
  failures = 0;
  readonly accepted = new Map<number, LedgerEntry>();
  readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.requests++;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        format: string;
        entries: LedgerEntry[];
      };
      if (this.fail) {
        this.failures++;
        res.writeHead(503).end();
      } else {
        for (const e of body.entries) this.accepted.set(e.seq, e);
        res.writeHead(200).end();
      }
      this.emit('request');
    });
  });

  /** Resolves once `done()` holds after a request. */
  async until(done: () => boolean): Promise<void> {
    while (!done()) await once(this, 'request');
  }
}

describe('ledger webhook push', () => {
  const receiver = new Receiver();
  let url: string;
  let dataDir: string;
  let t: TestHub | undefined;
  beforeAll(async () => {
    receiver.server.listen(0, '127.0.0.1');
    await once(receiver.server, 'listening');
    url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/ledger`;
    dataDir = await mkdtemp(join(tmpdir(), 'citysense-ledger-webhook-'));
  });
  afterAll(async () => {
    await t?.stop();
    receiver.server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = () =>
    startTestHub({ ledger: { webhookUrl: url, webhookBackoffMs: 20, webhookMaxBackoffMs: 200 } }, dataDir);
  /** The hub records an acknowledgement just after the receiver answers: read until it has. */
  const statusWhen = async (hub: TestHub, ok: (s: WebhookStatus) => boolean): Promise<WebhookStatus> => {
    for (let i = 0; ; i++) {
      const { body } = await hub.api<WebhookStatus>('GET', '/v1/ledger/webhook');
      if (ok(body) || i > 500) return body;
    }
  };
  const register = (hub: TestHub, latitude: number) =>
    hub.api('POST', '/v1/ledger/devices', { kind: 'noise', ownerAgency: 'eco', longitude: 116.3, latitude });

  it('retries with backoff until the target accepts, and resumes after a restart', async () => {
    t = await start();
    for (const lat of [39.1, 39.2, 39.3]) expect((await register(t, lat)).status).toBe(201);
    await receiver.until(() => receiver.failures >= 2);
    receiver.fail = false;
    await receiver.until(() => receiver.accepted.has(3));
    const status = await statusWhen(t, (s) => s.deliveredSeq === 3);
    expect(status).toMatchObject({ deliveredSeq: 3, pending: 0, attempts: 0, lastError: null });

    // The target goes down; two more changes wait in the outbox while the hub restarts.
    receiver.fail = true;
    const failuresBefore = receiver.failures;
    for (const lat of [39.4, 39.5]) expect((await register(t, lat)).status).toBe(201);
    await receiver.until(() => receiver.failures > failuresBefore);
    const waiting = await t.api<WebhookStatus>('GET', '/v1/ledger/webhook');
    expect(waiting.body.pending).toBe(2);
    await t.stop();
    t = undefined;

    receiver.fail = false;
    t = await start();
    await receiver.until(() => receiver.accepted.has(5));
    const entries = [...receiver.accepted.values()].sort((a, b) => a.seq - b.seq);
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    // What arrived is a chain the receiver can check on its own.
    entries.forEach((e, i) => {
      expect(entryHash(e.prevHash, e.content, e.seq, e.time)).toBe(e.hash);
      if (i > 0) expect(e.prevHash).toBe(entries[i - 1]?.hash);
    });
    expect(await statusWhen(t, (s) => s.deliveredSeq === 5)).toMatchObject({ pending: 0 });
  });
});
