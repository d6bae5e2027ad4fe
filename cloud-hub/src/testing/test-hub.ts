import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEd25519, signEd25519 } from '@citysense/protocol';
import { Value } from '@sinclair/typebox/value';
import { type HubConfig, HubConfigSchema } from '../config.ts';
import { Hub } from '../hub.ts';

/** A hub on free ports with its own temporary data dir, for tests. */
export interface TestHub {
  hub: Hub;
  httpUrl: string;
  mqttUrl: string;
  adminToken: string;
  dataDir: string;
  /** Calls the API as admin (or with `token`); returns status and parsed JSON. */
  api<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    token?: string | null,
  ): Promise<{ status: number; body: T }>;
  /** Creates a token and enrols a node with a fresh key; returns its credentials. */
  enroll(name?: string): Promise<{ nodeId: string; password: string; groupId: string; mqttUrl: string }>;
  stop(): Promise<void>;
}

/** Starts a hub for a test. `overrides` are config values (e.g. databaseUrl, mqttUrl). */
export async function startTestHub(
  overrides: Partial<Omit<HubConfig, 'sip' | 'media' | 'ledger' | 'alarms'>> & {
    sip?: Partial<HubConfig['sip']>;
    media?: Partial<HubConfig['media']>;
    ledger?: Partial<HubConfig['ledger']>;
    alarms?: Partial<HubConfig['alarms']>;
  } = {},
  dataDir?: string,
): Promise<TestHub> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'citysense-hub-')));
  const config = Value.Default(HubConfigSchema, {
    httpHost: '127.0.0.1',
    httpPort: 0,
    mqttHost: '127.0.0.1',
    mqttPort: 0,
    dataDir: dir,
    maintenanceIntervalMs: 3_600_000,
    ...overrides,
    sip: { host: '127.0.0.1', port: 0, ...overrides.sip },
    media: { host: '127.0.0.1', rtmpPort: 0, httpPort: 0, rtpHost: '127.0.0.1', ...overrides.media },
  }) as HubConfig;
  const hub = new Hub(config);
  const endpoints = await hub.start();
  const adminToken = endpoints.adminToken.token;
  const api = async <T>(method: string, path: string, body?: unknown, token: string | null = adminToken) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${endpoints.httpUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  return {
    hub,
    httpUrl: endpoints.httpUrl,
    mqttUrl: endpoints.mqttUrl,
    adminToken,
    dataDir: dir,
    api,
    async enroll(name) {
      const created = await api<{ token: string }>('POST', '/v1/enrollment-tokens', name ? { name } : {});
      const keys = generateEd25519();
      const token = created.body.token;
      const res = await api<{ nodeId: string; groupId: string; mqtt: { password: string; url: string } }>(
        'POST',
        '/v1/nodes/enroll',
        {
          token,
          publicKey: keys.publicKey,
          signature: signEd25519(keys.privateKey, `${token}\n${keys.publicKey}`),
        },
        null,
      );
      if (res.status !== 201) throw new Error(`enrolment failed: ${JSON.stringify(res.body)}`);
      return {
        nodeId: res.body.nodeId,
        password: res.body.mqtt.password,
        groupId: res.body.groupId,
        mqttUrl: res.body.mqtt.url,
      };
    },
    async stop() {
      await hub.stop();
      if (!dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
