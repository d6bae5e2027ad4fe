import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureIdentity } from './enrollment.ts';
import { IdentityStore } from './identity-store.ts';
import { TestBroker, TestEnrollServer } from './testing/harness.ts';

const backoff = { initialMs: 10, maxMs: 50 };

describe('enrolment', () => {
  let broker: TestBroker;
  let hub: TestEnrollServer;
  const dirs: string[] = [];
  const stateDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cs-enrol-'));
    dirs.push(dir);
    return dir;
  };

  beforeAll(async () => {
    broker = await TestBroker.start();
    hub = new TestEnrollServer(broker);
    await hub.start();
  });
  afterAll(async () => {
    await hub.close();
    await broker.close();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('enrols once with a signed request, stores the identity 0600, and reuses it on restart', async () => {
    hub.requests.length = 0;
    hub.answer = null;
    const dir = await stateDir();
    const o = {
      hubUrl: hub.url,
      token: 'tok-1',
      stateDir: dir,
      poleId: 'P-17',
      location: { lon: 116.4, lat: 39.9 },
      backoff,
    };
    const first = await ensureIdentity(o, new AbortController().signal);
    expect(first).toMatchObject({ nodeId: 'gw-test-1', groupId: 'city', hubId: 'hub-1', hubUrl: hub.url });
    expect(first.mqtt).toMatchObject({ url: broker.url, username: 'gw-test-1', clientId: 'gw-test-1' });
    expect(hub.requests).toHaveLength(1);
    const seen = hub.requests[0];
    expect(seen?.signatureValid).toBe(true);
    expect(seen?.body).toMatchObject({
      token: 'tok-1',
      poleId: 'P-17',
      location: { lon: 116.4, lat: 39.9 },
      hardware: { executionProviders: ['cpu'] },
    });
    const mode = (await stat(join(dir, 'identity.json'))).mode & 0o777;
    expect(mode).toBe(0o600);

    const again = await ensureIdentity({ ...o, token: 'tok-other' }, new AbortController().signal);
    expect(again).toEqual(first);
    expect(hub.requests).toHaveLength(1);
    expect(await new IdentityStore(dir).load()).toEqual(first);
  });

  it('surfaces a hub refusal with its code and does not retry it', async () => {
    hub.requests.length = 0;
    hub.answer = () => ({ status: 409, body: { code: 'CS_ERR_TOKEN_USED', message: 'token already used' } });
    const dir = await stateDir();
    const err = await ensureIdentity(
      { hubUrl: hub.url, token: 'tok-2', stateDir: dir, backoff },
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CS_ERR_TOKEN_USED', statusCode: 409 });
    expect((err as Error).message).toMatch(/ask the hub operator for a new token/);
    expect(hub.requests).toHaveLength(1);
    expect(await new IdentityStore(dir).load()).toBeNull();
  });

  it('retries 5xx answers with backoff, and derives the broker URL when the hub gives none', async () => {
    hub.requests.length = 0;
    hub.answer = (n) =>
      n < 3
        ? { status: 503, body: { code: 'CS_ERR_UNAVAILABLE', message: 'starting' } }
        : {
            status: 201,
            body: {
              nodeId: 'gw-9',
              groupId: 'city',
              hubId: 'hub-1',
              mqtt: { url: null, username: 'u', password: 'p', clientId: 'gw-9' },
            },
          };
    const identity = await ensureIdentity(
      { hubUrl: hub.url, token: 'tok-3', stateDir: await stateDir(), backoff },
      new AbortController().signal,
    );
    expect(hub.requests).toHaveLength(3);
    expect(identity.mqtt.url).toBe('mqtt://127.0.0.1:1883');
  });

  it('tells the engineer to bring a token when the box is not enrolled', async () => {
    const err = await ensureIdentity(
      { hubUrl: hub.url, stateDir: await stateDir(), backoff },
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CS_ERR_ENROLL_TOKEN_MISSING' });
  });
});
