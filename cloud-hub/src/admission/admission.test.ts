/**
 * The runtime obeys the ledger, end to end: a simulated GB/T 28181 camera over real SIP and
 * an edge node over real MQTT/Sparkplug against a hub with `ledger.enforce` all or off.
 */
import {
  DataType,
  decodePayload,
  decodeSpoolAck,
  encodePayload,
  SPOOL_ACK,
  SPOOL_ID,
} from '@citysense/protocol';
import { Gb28181Camera } from '@citysense/simulators';
import { Value } from '@sinclair/typebox/value';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubConfigSchema } from '../config.ts';
import type { LedgerDevice } from '../ledger/ledger-store.ts';
import { connectNode } from '../testing/node-client.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { RefusalRecord } from './refusal-log.ts';

type ErrorBody = { code: string; message: string };
type Refusals = { state: string | null; admitted: boolean; refusals: RefusalRecord[] };
type Reading = { value: unknown };

const CAMERA = '34020000001320000901';
const PROPOSED_SENSOR = '34020000001800000901';
const ACTIVE_SENSOR = '34020000001800000902';
const PLAIN_SENSOR = 'meter-1';
const PASSWORD = 'correct horse battery';

/** Files a device in the ledger as the admin. */
async function file(t: TestHub, code: string, kind: string, latitude: number, state?: string) {
  const r = await t.api<LedgerDevice & ErrorBody>('POST', '/v1/ledger/devices', {
    code,
    kind,
    ownerAgency: 'haidian',
    longitude: 116.3,
    latitude,
    ...(state ? { state } : {}),
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

/** A simulated camera pointed at the hub. */
function cameraFor(t: TestHub, deviceId: string): Gb28181Camera {
  return new Gb28181Camera({
    deviceId,
    password: t.hub.config.sip.password,
    server: { id: t.hub.config.sip.id, host: '127.0.0.1', port: t.hub.video.platform.port },
  });
}

/** Resolves once spool acks to `node` covered every id in `ids`. */
function acked(client: MqttClient, ids: number[]): Promise<void> {
  const waiting = new Set(ids);
  return new Promise((resolve) => {
    client.on('message', (_topic, payload) => {
      for (const m of decodePayload(payload).metrics)
        if (m.name === SPOOL_ACK)
          for (const { first, last } of decodeSpoolAck(m.value as Uint8Array))
            for (let id = first; id <= last; id++) waiting.delete(id);
      if (waiting.size === 0) resolve();
    });
  });
}

/**
 * Sends births for three devices and one reading each (spool records 11, 12, 13), waits
 * for all three acks, and answers the stored PM2.5 values per device.
 */
async function sendReadings(t: TestHub, devices: string[]): Promise<Record<string, unknown[]>> {
  const node = await t.enroll();
  const client = await connectNode(node.mqttUrl, node.nodeId, node.password);
  try {
    await client.subscribeAsync(`spBv1.0/${node.groupId}/NCMD/${node.nodeId}`);
    const topic = (type: string, device?: string) =>
      `spBv1.0/${node.groupId}/${type}/${node.nodeId}${device ? `/${device}` : ''}`;
    const now = Date.now() - 60_000;
    let seq = 0;
    const send = (
      type: string,
      device: string | undefined,
      metrics: Parameters<typeof encodePayload>[0]['metrics'],
    ) =>
      client.publishAsync(
        topic(type, device),
        Buffer.from(encodePayload({ seq: seq++, timestamp: now, metrics })),
      );
    await send('NBIRTH', undefined, [{ name: 'bdSeq', datatype: DataType.UInt64, value: 0 }]);
    for (const device of devices)
      await send('DBIRTH', device, [
        { name: 'PM2.5', datatype: DataType.Double, value: null },
        { name: SPOOL_ID, datatype: DataType.UInt64, value: null },
      ]);
    const ids = devices.map((_, i) => 11 + i);
    const done = acked(client, ids);
    for (const [i, device] of devices.entries())
      await send('DDATA', device, [
        { name: 'PM2.5', datatype: DataType.Double, value: 10 + i, timestamp: now + 1000 },
        { name: SPOOL_ID, datatype: DataType.UInt64, value: ids[i] },
      ]);
    // Every record is acked, the refused one too: the gateway does not resend it.
    await done;
    const stored: Record<string, unknown[]> = {};
    for (const device of devices) {
      const r = await t.api<Reading[]>(
        'GET',
        `/v1/readings?node=${node.nodeId}&device=${device}&metric=${encodeURIComponent('PM2.5')}&from=0`,
      );
      stored[device] = r.body.map((x) => x.value);
    }
    return stored;
  } finally {
    await client.endAsync();
  }
}

describe('the runtime obeys the ledger (enforce: all)', () => {
  let t: TestHub;
  const token: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestHub({ ledger: { enforce: 'all' }, sip: { queryOnRegister: false } });
    for (const id of ['haidian', 'chaoyang'])
      expect((await t.api('PUT', `/v1/agencies/${id}`, { name: id, kind: 'district' })).status).toBe(201);
    for (const [username, agencyId] of [
      ['op-a', 'haidian'],
      ['op-b', 'chaoyang'],
    ] as const) {
      const created = await t.api('POST', '/v1/users', {
        username,
        displayName: username,
        agencyId,
        password: PASSWORD,
        roles: [{ role: 'agency-operator' }],
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const login = await t.api<{ token: string }>(
        'POST',
        '/v1/auth/login',
        { username, password: PASSWORD },
        null,
      );
      token[username] = login.body.token;
    }
  });
  afterAll(async () => t?.stop());

  const refusalsOf = (code: string, as: string | undefined = undefined) =>
    t.api<Refusals & ErrorBody>(
      'GET',
      `/v1/ledger/devices/${code}/refusals`,
      undefined,
      as ? token[as] : undefined,
    );

  it('refuses a proposed camera even when listed, admits it once approved, refuses it once retired', async () => {
    await file(t, CAMERA, 'camera', 39.9);
    // On the video list too: the ledger entry decides.
    expect((await t.api('POST', '/v1/video/devices', { deviceId: CAMERA })).status).toBe(201);
    const camera = cameraFor(t, CAMERA);
    try {
      await expect(camera.start()).rejects.toMatchObject({ code: 'CS_ERR_GB_REGISTER_FORBIDDEN' });
      // The 403 the camera got carries the ledger's code, not the unknown-device one.
      expect(t.hub.video.platform.stats().refused).toEqual({ CS_ERR_LEDGER_NOT_ACTIVE: 1 });

      // Its owner sees why; another agency does not.
      const seen = await refusalsOf(CAMERA, 'op-a');
      expect(seen.status).toBe(200);
      expect(seen.body).toMatchObject({ state: 'proposed', admitted: false });
      expect(seen.body.refusals).toEqual([
        expect.objectContaining({ code: 'CS_ERR_LEDGER_NOT_ACTIVE', channel: 'video', count: 1 }),
      ]);
      expect(seen.body.refusals[0]?.reason).toMatch(/proposed in the ledger/);
      expect((await refusalsOf(CAMERA, 'op-b')).body.code).toBe('CS_ERR_AUTH_FORBIDDEN');

      // Joint review approves the project: the camera registers.
      const project = await t.api<{ id: string } & ErrorBody>('POST', '/v1/review/projects', {
        name: 'east gate',
        purpose: 'crossing safety',
        agencyId: 'haidian',
        devices: [{ code: CAMERA, purpose: 'crossing' }],
      });
      expect(project.status, JSON.stringify(project.body)).toBe(201);
      const path = `/v1/review/projects/${project.body.id}`;
      expect((await t.api('POST', `${path}/submit`)).status).toBe(200);
      expect((await t.api('POST', `${path}/route`, {})).status).toBe(200);
      const decided = await t.api<{ state: string }>('POST', `${path}/decisions`, {
        category: 'video',
        decision: 'approve',
      });
      expect(decided.body.state).toBe('approved');
      await t.hub.admission.settled();
      await camera.start();
      expect(camera.registered).toBe(true);
      await camera.stop();

      // Retired: the next registration is refused again.
      const retired = await t.api<LedgerDevice>('POST', `/v1/ledger/devices/${CAMERA}/transitions`, {
        to: 'retired',
      });
      expect(retired.body.state).toBe('retired');
      await t.hub.admission.settled();
      await expect(camera.start()).rejects.toMatchObject({ code: 'CS_ERR_GB_REGISTER_FORBIDDEN' });
      const after = await refusalsOf(CAMERA, 'op-a');
      expect(after.body).toMatchObject({ state: 'retired', admitted: false });
      expect(after.body.refusals.map((r) => [r.code, r.channel, r.count])).toEqual([
        ['CS_ERR_LEDGER_NOT_ACTIVE', 'video', 2],
      ]);
      expect(after.body.refusals[0]?.reason).toMatch(/retired/);
    } finally {
      await camera.stop();
    }
  });

  it('drops and counts readings of a proposed sensor, stores an active one and a non-code device', async () => {
    await file(t, PROPOSED_SENSOR, 'air-quality', 39.8);
    await file(t, ACTIVE_SENSOR, 'air-quality', 39.7, 'active');
    await t.hub.admission.settled();
    const stored = await sendReadings(t, [PROPOSED_SENSOR, ACTIVE_SENSOR, PLAIN_SENSOR]);
    expect(stored).toEqual({ [PROPOSED_SENSOR]: [], [ACTIVE_SENSOR]: [11], [PLAIN_SENSOR]: [12] });

    const seen = await refusalsOf(PROPOSED_SENSOR);
    expect(seen.body.refusals).toEqual([
      expect.objectContaining({ code: 'CS_ERR_LEDGER_NOT_ACTIVE', channel: 'sensor', count: 1 }),
    ]);
    expect(seen.body.refusals[0]?.source).toMatch(/^sparkplug node /);
    expect((await refusalsOf(ACTIVE_SENSOR)).body).toMatchObject({ admitted: true, refusals: [] });
    const metrics = await fetch(`${t.httpUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(
      /citysense_ledger_refused_total\{channel="sensor",code="CS_ERR_LEDGER_NOT_ACTIVE"\} 1\b/,
    );
    expect(metrics).toMatch(
      /citysense_ledger_refused_total\{channel="video",code="CS_ERR_LEDGER_NOT_ACTIVE"\} 2\b/,
    );
  });
});

describe('the runtime ignores the ledger (enforce: off)', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub({ ledger: { enforce: 'off' }, sip: { queryOnRegister: false } });
  });
  afterAll(async () => t?.stop());

  it('defaults to video', () => {
    expect(Value.Default(HubConfigSchema, { ledger: {} })).toMatchObject({ ledger: { enforce: 'video' } });
  });

  it('admits a listed camera and stores readings whatever their ledger state', async () => {
    await file(t, CAMERA, 'camera', 39.9);
    await file(t, PROPOSED_SENSOR, 'air-quality', 39.8);
    const camera = cameraFor(t, CAMERA);
    try {
      // Not listed: the registrar's own refusal, as before the ledger.
      await expect(camera.start()).rejects.toMatchObject({ code: 'CS_ERR_GB_REGISTER_FORBIDDEN' });
      expect(t.hub.video.platform.stats().refused).toEqual({ CS_ERR_GB_REGISTER_UNKNOWN_DEVICE: 1 });
      expect((await t.api('POST', '/v1/video/devices', { deviceId: CAMERA })).status).toBe(201);
      await camera.start();
      expect(camera.registered).toBe(true);
    } finally {
      await camera.stop();
    }
    expect(await sendReadings(t, [PROPOSED_SENSOR, PLAIN_SENSOR])).toEqual({
      [PROPOSED_SENSOR]: [10],
      [PLAIN_SENSOR]: [11],
    });
    expect((await t.api<Refusals>('GET', `/v1/ledger/devices/${CAMERA}/refusals`)).body.refusals).toEqual([]);
    expect(
      (await t.api<Refusals>('GET', `/v1/ledger/devices/${PROPOSED_SENSOR}/refusals`)).body.refusals,
    ).toEqual([]);
  });
});
