import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, encodePayload } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNode } from '../testing/node-client.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';

/** Server-sent events of a fetch body, one at a time. */
async function* sse(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: unknown }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) yield { event, data: JSON.parse(data) as unknown };
        end = buffer.indexOf('\n\n');
      }
    }
  } finally {
    await reader.cancel();
  }
}

describe('hub side of the web console', () => {
  let t: TestHub;
  let dist: string;

  beforeAll(async () => {
    dist = await mkdtemp(join(tmpdir(), 'citysense-console-dist-'));
    t = await startTestHub({
      console: { distDir: dist, tileUrl: 'https://tiles.example.gov.cn/{z}/{x}/{y}.png' },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dist, { recursive: true, force: true });
  });

  it('answers / with how to build the console while it is not built, and serves it once built', async () => {
    const missing = await fetch(`${t.httpUrl}/`, { headers: { accept: 'text/html' } });
    expect(missing.status).toBe(503);
    expect(await missing.text()).toContain('npm run build -w console');

    await mkdir(join(dist, 'assets'), { recursive: true });
    await writeFile(join(dist, 'index.html'), '<!doctype html><title>console</title>');
    await writeFile(join(dist, 'assets', 'app-1234.js'), 'export {};');
    const page = await fetch(`${t.httpUrl}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain('img-src');
    expect(page.headers.get('content-security-policy')).toContain('https://tiles.example.gov.cn');
    expect(await page.text()).toContain('<title>console</title>');

    const deep = await fetch(`${t.httpUrl}/fleet/pole-001`, { headers: { accept: 'text/html' } });
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('<title>console</title>');

    const asset = await fetch(`${t.httpUrl}/assets/app-1234.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');

    // The API keeps its coded JSON 404s.
    const api = await fetch(`${t.httpUrl}/v1/no-such-route`, {
      headers: { accept: 'text/html', authorization: `Bearer ${t.adminToken}` },
    });
    expect(api.status).toBe(404);
    expect(((await api.json()) as { code: string }).code).toBe('CS_ERR_NOT_FOUND');
  });

  it('tells the console its basemap tiles', async () => {
    const res = await t.api<{ basemap: { tileUrl: string | null } }>('GET', '/v1/console/config');
    expect(res.status).toBe(200);
    expect(res.body.basemap.tileUrl).toBe('https://tiles.example.gov.cn/{z}/{x}/{y}.png');
    expect((await t.api('GET', '/v1/console/config', undefined, null)).status).toBe(401);
  });

  it('streams platform health and node changes to a signed-in user, and refuses anonymous streams', async () => {
    const anonymous = await fetch(`${t.httpUrl}/v1/events`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { code: string }).code).toBe('CS_ERR_AUTH_REQUIRED');

    const creds = await t.enroll('console-node-1');
    const stream = await fetch(`${t.httpUrl}/v1/events`, {
      headers: { authorization: `Bearer ${t.adminToken}` },
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const body = stream.body;
    if (!body) throw new Error('no body');

    const events = sse(body);
    const first = await events.next();
    expect(first.value).toMatchObject({ event: 'summary', data: { nodes: { online: 0, total: 1 } } });
    const client = await connectNode(creds.mqttUrl, creds.nodeId, creds.password);
    try {
      await client.publishAsync(
        `spBv1.0/${creds.groupId}/NBIRTH/${creds.nodeId}`,
        Buffer.from(
          encodePayload({
            seq: 0,
            timestamp: Date.now(),
            metrics: [{ name: 'bdSeq', datatype: DataType.UInt64, value: 0 }],
          }),
        ),
        { qos: 1 },
      );
      for await (const e of events) {
        if (e.event === 'node') {
          expect(e.data).toMatchObject({ id: creds.nodeId, online: true });
          break;
        }
      }
    } finally {
      await client.endAsync();
    }

    const summary = await t.api<{ nodes: { online: number; total: number }; alarms: { open: number } }>(
      'GET',
      '/v1/health/summary',
    );
    expect(summary.status).toBe(200);
    expect(summary.body.nodes.total).toBe(1);
    expect(summary.body.alarms.open).toBe(0);
  });
});
