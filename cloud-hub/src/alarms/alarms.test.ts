import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataType, encodePayload } from '@citysense/protocol';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../testing/eventually.ts';
import { connectNode } from '../testing/node-client.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { AlarmView } from './alarm-store.ts';

const SECRET = 'alarm-test-secret-0123456789';
const PASSWORD = 'correct horse battery staple';

type Detail = AlarmView & {
  history: Array<{ transition: string; actor: string | null; comment: string | null }>;
  deliveries: Array<{ target: string; state: string; attempts: number; lastError: string | null }>;
};
type Hook = {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: { event: string; eventId: number; alarm: AlarmView };
};

/** A receiver of alarm webhooks on port 0; answers 503 to the first `failures` requests per `<path> <rule id>`. */
function webhookReceiver() {
  const received: Hook[] = [];
  const failures = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '/';
      const body = JSON.parse(raw) as Hook['body'];
      const key = `${path} ${body.alarm.ruleId}`;
      const left = failures.get(key) ?? 0;
      if (left > 0) {
        failures.set(key, left - 1);
        res.writeHead(503).end();
        return;
      }
      received.push({ path, headers: req.headers, raw, body });
      res.writeHead(204).end();
    });
  });
  return { server, received, failures };
}

/** A gateway publishing Sparkplug B births and data by alias, with a continuous seq. */
class SimNode {
  #seq = 0;
  constructor(
    readonly client: MqttClient,
    readonly nodeId: string,
  ) {}
  #topic(type: string, device?: string) {
    return `spBv1.0/city/${type}/${this.nodeId}${device ? `/${device}` : ''}`;
  }
  async #send(
    type: string,
    device: string | undefined,
    metrics: Parameters<typeof encodePayload>[0]['metrics'],
    seq = this.#next(),
  ) {
    await this.client.publishAsync(
      this.#topic(type, device),
      Buffer.from(encodePayload({ seq, timestamp: Date.now(), metrics })),
      { qos: 1 },
    );
  }
  #next() {
    this.#seq = (this.#seq + 1) % 256;
    return this.#seq;
  }
  async birth() {
    this.#seq = 0;
    await this.#send(
      'NBIRTH',
      undefined,
      [
        { name: 'bdSeq', datatype: DataType.UInt64, value: 0 },
        { name: 'Health/CPU Percent', alias: 1, datatype: DataType.Double, value: 10 },
      ],
      0,
    );
    await this.#send('DBIRTH', 'air', [
      { name: 'PM2.5', alias: 2, datatype: DataType.Double, value: null },
      { name: 'Noise', alias: 3, datatype: DataType.Double, value: null },
      { name: 'Water Level', alias: 4, datatype: DataType.Double, value: null },
    ]);
  }
  /** DDATA of device `air`: values by alias, sample time `time`. */
  async air(values: Record<number, number>, time = Date.now()) {
    await this.#send(
      'DDATA',
      'air',
      Object.entries(values).map(([alias, value]) => ({
        alias: Number(alias),
        timestamp: time,
        datatype: DataType.Double,
        value,
      })),
    );
  }
  async cpu(value: number) {
    await this.#send('NDATA', undefined, [
      { alias: 1, timestamp: Date.now(), datatype: DataType.Double, value },
    ]);
  }
  async death() {
    await this.client.publishAsync(
      this.#topic('NDEATH'),
      Buffer.from(
        encodePayload({
          timestamp: Date.now(),
          metrics: [{ name: 'bdSeq', datatype: DataType.UInt64, value: 0 }],
        }),
      ),
    );
  }
}

const PM = 2;
const NOISE = 3;
const WATER = 4;

describe('hub rules engine and tiered alarms', () => {
  const hooks = webhookReceiver();
  let t: TestHub;
  let node: SimNode;
  let url: string;

  const createRule = async (rule: Record<string, unknown>) => {
    const res = await t.api<{ id: string }>('POST', '/v1/alarm-rules', rule);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const alarmsOf = async (rule: string, query = '') =>
    (await t.api<AlarmView[]>('GET', `/v1/alarms?rule=${rule}${query}`)).body;
  /** The latest alarm of `rule` once `ok` holds for it. */
  const alarmWhen = (rule: string, ok: (a: AlarmView) => boolean, what = `alarm of ${rule}`) =>
    eventually(async () => (await alarmsOf(rule)).find(ok), 10_000, what);

  beforeAll(async () => {
    hooks.server.listen(0, '127.0.0.1');
    await once(hooks.server, 'listening');
    url = `http://127.0.0.1:${(hooks.server.address() as AddressInfo).port}`;
    t = await startTestHub({
      alarms: {
        webhookUrl: `${url}/global`,
        webhookSecret: SECRET,
        webhookBackoffMs: 20,
        webhookMaxBackoffMs: 200,
        tickMs: 25,
        flushMs: 5,
      },
    });
    const n = await t.enroll('pole-a');
    node = new SimNode(await connectNode(n.mqttUrl, n.nodeId, n.password), n.nodeId);
    await node.birth();
    await eventually(
      async () => (await t.api<{ status: string }>('GET', `/v1/nodes/${n.nodeId}`)).body.status === 'online',
    );
  });
  afterAll(async () => {
    await node?.client.endAsync();
    await t?.stop();
    hooks.server.close();
  });

  it('a threshold rule raises once, de-duplicates repeats, holds in the hysteresis band and clears by itself', async () => {
    await createRule({
      id: 'pm-high',
      name: 'PM2.5 high',
      severity: 'major',
      scope: { device: 'air', metric: 'PM*' },
      condition: { kind: 'threshold', op: '>', value: 75, clearValue: 50 },
      message: 'PM2.5 above 75 µg/m³',
    });
    await node.air({ [PM]: 30 });
    await node.air({ [PM]: 80 });
    const raised = await alarmWhen('pm-high', (a) => a.state === 'active');
    expect(raised).toMatchObject({
      node: node.nodeId,
      device: 'air',
      metric: 'PM2.5',
      severity: 'major',
      firstValue: 80,
      count: 1,
    });
    await node.air({ [PM]: 90 });
    await node.air({ [PM]: 85 });
    await node.air({ [PM]: 60 }); // inside the band: stays open, not counted
    const repeated = await alarmWhen('pm-high', (a) => a.count === 3 && a.lastValue === 85);
    expect(repeated.id).toBe(raised.id);
    expect(await alarmsOf('pm-high')).toHaveLength(1);
    const metrics = await fetch(`${t.httpUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/citysense_alarms_open\{severity="major"\} 1/);

    await node.air({ [PM]: 40 });
    const cleared = await alarmWhen('pm-high', (a) => a.state === 'cleared');
    expect(cleared).toMatchObject({ id: raised.id, clearReason: 'condition', lastValue: 40, count: 3 });
    const detail = (await t.api<Detail>('GET', `/v1/alarms/${raised.id}`)).body;
    expect(detail.history.map((h) => h.transition)).toEqual(['raised', 'cleared']);
    expect(await fetch(`${t.httpUrl}/metrics`).then((r) => r.text())).toMatch(
      /citysense_alarms_open\{severity="major"\} 0/,
    );

    // A new violation after the clear is a new alarm.
    await node.air({ [PM]: 100 });
    const again = await alarmWhen('pm-high', (a) => a.state === 'active');
    expect(again.id).not.toBe(raised.id);
    // A new condition clears what the old one raised.
    const put = await t.api('PUT', '/v1/alarm-rules/pm-high', {
      name: 'PM2.5 high',
      severity: 'major',
      scope: { device: 'air', metric: 'PM*' },
      condition: { kind: 'threshold', op: '>', value: 95, clearValue: 50 },
    });
    expect(put.status).toBe(200);
    expect((await t.api<AlarmView>('GET', `/v1/alarms/${again.id}`)).body).toMatchObject({
      state: 'cleared',
      clearReason: 'rule-changed',
    });
    await node.air({ [PM]: 10 });
  });

  it('acknowledges and clears by hand; unknown alarms are 404, acting on a cleared one is 409', async () => {
    await createRule({
      id: 'noise-loud',
      name: 'Noise above 70 dB(A)',
      severity: 'critical',
      scope: { nodes: [node.nodeId], device: 'air', metric: 'Noise' },
      condition: { kind: 'threshold', op: '>=', value: 70 },
    });
    await node.air({ [NOISE]: 75 });
    const alarm = await alarmWhen('noise-loud', (a) => a.state === 'active');

    const ack = await t.api<AlarmView>('POST', `/v1/alarms/${alarm.id}/ack`, { comment: 'crew sent' });
    expect(ack.status, JSON.stringify(ack.body)).toBe(200);
    expect(ack.body).toMatchObject({
      state: 'acknowledged',
      acknowledgedBy: 'admin',
      ackComment: 'crew sent',
    });
    const twice = await t.api<{ code: string }>('POST', `/v1/alarms/${alarm.id}/ack`, {});
    expect([twice.status, twice.body.code]).toEqual([409, 'CS_ERR_ALARM_STATE']);

    // Severity ordering: the critical alarm comes before anything less severe.
    await node.air({ [PM]: 99 });
    await alarmWhen('pm-high', (a) => a.state === 'active');
    const open = (await t.api<AlarmView[]>('GET', '/v1/alarms?state=open')).body;
    expect(open.map((a) => a.severity)).toEqual(['critical', 'major']);
    expect((await t.api<AlarmView[]>('GET', '/v1/alarms?state=open&severity=critical')).body).toHaveLength(1);
    await node.air({ [PM]: 10 });

    const clear = await t.api<AlarmView>('POST', `/v1/alarms/${alarm.id}/clear`, { comment: 'silenced' });
    expect(clear.status).toBe(200);
    expect(clear.body).toMatchObject({ state: 'cleared', clearReason: 'manual', clearedBy: 'admin' });
    for (const verb of ['ack', 'clear']) {
      const res = await t.api<{ code: string }>('POST', `/v1/alarms/${alarm.id}/${verb}`, {});
      expect([res.status, res.body.code]).toEqual([409, 'CS_ERR_ALARM_STATE']);
    }
    const detail = (await t.api<Detail>('GET', `/v1/alarms/${alarm.id}`)).body;
    expect(detail.history.map((h) => [h.transition, h.actor])).toEqual([
      ['raised', null],
      ['acknowledged', 'admin'],
      ['cleared', 'admin'],
    ]);
    for (const id of ['3f1e1a4e-0000-4000-8000-000000000000', 'nope']) {
      const res = await t.api<{ code: string }>('POST', `/v1/alarms/${id}/ack`, {});
      expect([res.status, res.body.code]).toEqual([404, 'CS_ERR_ALARM_NOT_FOUND']);
    }
    // The condition still holds after a manual clear: the next violation opens a new alarm.
    await node.air({ [NOISE]: 80 });
    const next = await alarmWhen('noise-loud', (a) => a.state === 'active');
    expect(next.id).not.toBe(alarm.id);
    // Deleting the rule clears what it left open.
    expect((await t.api('DELETE', '/v1/alarm-rules/noise-loud')).status).toBe(204);
    expect((await t.api<AlarmView>('GET', `/v1/alarms/${next.id}`)).body).toMatchObject({
      state: 'cleared',
      clearReason: 'rule-deleted',
    });
  });

  it('refuses invalid rules with CS_ERR_RULE_INVALID and duplicates with CS_ERR_RULE_DUPLICATE', async () => {
    const base = { name: 'x', severity: 'minor', scope: { metric: 'PM2.5' } };
    const bad = [
      { ...base },
      { ...base, condition: { kind: 'threshold', op: '=>', value: 1 } },
      { ...base, severity: 'fatal', condition: { kind: 'threshold', op: '>', value: 1 } },
      { ...base, condition: { kind: 'threshold', op: '>', value: 80, clearValue: 90 } },
      { ...base, condition: { kind: 'absence', forS: 0 } },
      { ...base, condition: { kind: 'rate-of-change', delta: 5, windowS: 10, direction: 'sideways' } },
      { ...base, condition: { kind: 'threshold', op: '>', value: 1 }, webhookUrl: 'ftp://x' },
      { ...base, condition: { kind: 'threshold', op: '>', value: 1 }, agencyId: 'no-such-agency' },
    ];
    for (const body of bad) {
      const res = await t.api<{ code: string }>('POST', '/v1/alarm-rules', body);
      expect([res.status, res.body.code], JSON.stringify(body)).toEqual([400, 'CS_ERR_RULE_INVALID']);
    }
    const ok = { ...base, id: 'dup', condition: { kind: 'threshold', op: '>', value: 1 }, enabled: false };
    await createRule(ok);
    const dup = await t.api<{ code: string }>('POST', '/v1/alarm-rules', ok);
    expect([dup.status, dup.body.code]).toEqual([409, 'CS_ERR_RULE_DUPLICATE']);
    const missing = await t.api<{ code: string }>('GET', '/v1/alarm-rules/none');
    expect([missing.status, missing.body.code]).toEqual([404, 'CS_ERR_RULE_NOT_FOUND']);
    const put = await t.api<{ enabled: boolean; condition: { value: number } }>(
      'PUT',
      '/v1/alarm-rules/dup',
      {
        ...ok,
        condition: { kind: 'threshold', op: '>', value: 2 },
      },
    );
    expect(put.status).toBe(200);
    expect(put.body.condition.value).toBe(2);
    expect((await t.api<Array<{ id: string }>>('GET', '/v1/alarm-rules')).body.map((r) => r.id)).toContain(
      'dup',
    );
    const doc = await t.api<{ paths: Record<string, Record<string, { tags?: string[] }>> }>(
      'GET',
      '/docs/json',
    );
    expect(doc.body.paths['/v1/alarm-rules']?.post?.tags).toEqual(['alarms']);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/v1/alarms', '/v1/alarms/{id}/ack']),
    );
  });

  it('a rate-of-change rule raises on a rise within its window and clears once the window has passed', async () => {
    await createRule({
      id: 'water-rising',
      name: 'Water rising fast',
      severity: 'major',
      scope: { device: 'air', metric: 'Water Level' },
      condition: { kind: 'rate-of-change', delta: 10, windowS: 60, direction: 'up' },
    });
    const t0 = Date.now() - 600_000;
    await node.air({ [WATER]: 1 }, t0);
    await node.air({ [WATER]: 4 }, t0 + 10_000);
    await node.air({ [WATER]: 2 }, t0 + 20_000); // a fall does not count
    await node.air({ [WATER]: 12 }, t0 + 30_000);
    const raised = await alarmWhen('water-rising', (a) => a.state === 'active');
    expect(raised.firstValue).toBe(12);
    await node.air({ [WATER]: 12.5 }, t0 + 200_000);
    await alarmWhen('water-rising', (a) => a.id === raised.id && a.state === 'cleared');
  });

  it('a duration rule raises only after the condition held for its time, from the timer', async () => {
    await createRule({
      id: 'cpu-hot',
      name: 'CPU busy',
      severity: 'warning',
      scope: { nodes: [node.nodeId], device: '', metric: 'Health/CPU Percent' },
      condition: { kind: 'duration', op: '>=', value: 90, forS: 0.4 },
    });
    const started = Date.now();
    await node.cpu(95);
    await node.cpu(97);
    const raised = await alarmWhen('cpu-hot', (a) => a.state === 'active');
    expect(Date.parse(raised.raisedAt) - started).toBeGreaterThanOrEqual(400);
    expect(raised.lastValue).toBe(97);
    await node.cpu(20);
    await alarmWhen('cpu-hot', (a) => a.state === 'cleared');
    // A short spike does not raise.
    await node.cpu(99);
    await node.cpu(10);
    await new Promise((r) => setTimeout(r, 500));
    expect((await alarmsOf('cpu-hot')).filter((a) => a.state !== 'cleared')).toHaveLength(0);
  });

  it('posts signed transitions, retrying a failing target with backoff until it accepts', async () => {
    hooks.failures.set('/global pm-extreme', 2);
    await createRule({
      id: 'pm-extreme',
      name: 'PM2.5 extreme',
      severity: 'critical',
      scope: { device: 'air', metric: 'PM2.5' },
      condition: { kind: 'threshold', op: '>', value: 300 },
      webhookUrl: `${url}/rule`,
    });
    await node.air({ [PM]: 350 });
    const alarm = await alarmWhen('pm-extreme', (a) => a.state === 'active');
    const hooksFor = (path: string) =>
      hooks.received.filter(
        (h) => h.path === path && h.body.alarm.id === alarm.id && h.body.event === 'alarm.raised',
      );
    await eventually(
      async () => hooksFor('/global').length > 0 && hooksFor('/rule').length > 0,
      10_000,
      'both webhooks',
    );
    for (const h of [...hooksFor('/global'), ...hooksFor('/rule')]) {
      const expected = `sha256=${createHmac('sha256', SECRET).update(h.raw).digest('hex')}`;
      expect(h.headers['x-citysense-signature-256']).toBe(expected);
      expect(h.body.alarm).toMatchObject({
        ruleId: 'pm-extreme',
        severity: 'critical',
        state: 'active',
        lastValue: 350,
      });
    }
    const detail = await eventually(async () => {
      const d = (await t.api<Detail>('GET', `/v1/alarms/${alarm.id}`)).body;
      return d.deliveries.every((x) => x.state === 'delivered') ? d : undefined;
    });
    const global = detail.deliveries.find((d) => d.target === `${url}/global`);
    expect(global).toMatchObject({ state: 'delivered', attempts: 3, lastError: null });
    expect(detail.deliveries.find((d) => d.target === `${url}/rule`)).toMatchObject({ attempts: 1 });
    const status = await t.api<{ counts: { delivered: number; failed: number } }>(
      'GET',
      '/v1/alarm-webhooks',
    );
    expect(status.body.counts.delivered).toBeGreaterThan(0);
    const metrics = await fetch(`${t.httpUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/citysense_alarm_webhook_failures_total [2-9]/);

    // The clear is posted too.
    await node.air({ [PM]: 20 });
    await eventually(
      async () =>
        hooks.received.some((h) => h.body.alarm.id === alarm.id && h.body.event === 'alarm.cleared'),
      10_000,
      'cleared webhook',
    );
  });

  it('an agency operator sees and acknowledges only alarms of their agency and platform-wide ones', async () => {
    for (const [id, kind] of [
      ['haidian', 'district'],
      ['chaoyang', 'district'],
    ])
      expect((await t.api('PUT', `/v1/agencies/${id}`, { name: id, kind })).status).toBe(201);
    const user = await t.api('POST', '/v1/users', {
      username: 'op-hd',
      displayName: 'Operator',
      agencyId: 'haidian',
      password: PASSWORD,
      roles: [{ role: 'agency-operator' }],
    });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    const login = await t.api<{ token: string }>(
      'POST',
      '/v1/auth/login',
      { username: 'op-hd', password: PASSWORD },
      null,
    );
    const op = login.body.token;
    await createRule({
      id: 'cy-noise',
      name: 'Chaoyang noise',
      severity: 'minor',
      agencyId: 'chaoyang',
      scope: { device: 'air', metric: 'Noise' },
      condition: { kind: 'threshold', op: '>', value: 60 },
    });
    await node.air({ [NOISE]: 65 });
    const alarm = await alarmWhen('cy-noise', (a) => a.state === 'active');
    const seen = (await t.api<AlarmView[]>('GET', '/v1/alarms?state=open', undefined, op)).body;
    expect(seen.map((a) => a.ruleId)).not.toContain('cy-noise');
    const ack = await t.api<{ code: string }>('POST', `/v1/alarms/${alarm.id}/ack`, {}, op);
    expect([ack.status, ack.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
    const create = await t.api<{ code: string }>(
      'POST',
      '/v1/alarm-rules',
      {
        name: 'city-wide',
        severity: 'minor',
        scope: { metric: 'Noise' },
        condition: { kind: 'threshold', op: '>', value: 1 },
      },
      op,
    );
    expect([create.status, create.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
    const own = await t.api(
      'POST',
      '/v1/alarm-rules',
      {
        name: 'own',
        agencyId: 'haidian',
        severity: 'minor',
        scope: { metric: 'Nothing' },
        condition: { kind: 'threshold', op: '>', value: 1 },
      },
      op,
    );
    expect(own.status).toBe(201);
    await node.air({ [NOISE]: 30 });
  });

  it('an absence rule fires when a node falls silent, and node offline raises on Health/Online', async () => {
    await createRule({
      id: 'air-silent',
      name: 'No PM2.5 from pole-a',
      severity: 'major',
      scope: { nodes: [node.nodeId], device: 'air', metric: 'PM2.5' },
      condition: { kind: 'absence', forS: 0.4 },
    });
    await createRule({
      id: 'node-offline',
      name: 'Gateway offline',
      severity: 'critical',
      scope: { metric: 'Health/Online' },
      condition: { kind: 'threshold', op: '==', value: 0 },
    });
    // Keep sending faster than the absence time: nothing fires.
    let lastSent = 0;
    for (let i = 0; i < 4; i++) {
      lastSent = Date.now();
      await node.air({ [PM]: 20 });
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(await alarmsOf('air-silent')).toHaveLength(0);
    const raised = await alarmWhen('air-silent', (a) => a.state === 'active');
    // Raised by the timer, no sooner than the absence time after the last value arrived.
    expect(Date.parse(raised.raisedAt) - lastSent).toBeGreaterThanOrEqual(400);
    expect(raised.lastValue).toBeNull();
    await node.air({ [PM]: 21 });
    await alarmWhen('air-silent', (a) => a.id === raised.id && a.state === 'cleared');

    await node.death();
    const offline = await alarmWhen('node-offline', (a) => a.state === 'active');
    expect(offline).toMatchObject({ node: node.nodeId, device: '', metric: 'Health/Online', lastValue: 0 });
    await alarmWhen('air-silent', (a) => a.state === 'active' && a.id !== raised.id, 'absence after NDEATH');
  });
});
