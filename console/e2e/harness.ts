/**
 * End-to-end harness of the web console: Debian's Chromium driven by playwright-core
 * (no browser download), a real hub on port 0 serving the built console, and
 * simulated data: enrolled gateways publishing Sparkplug births, carrier poles and
 * ledger devices registered through the API.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataType, encodePayload, generateEd25519, signEd25519 } from '@citysense/protocol';
import type { MqttClient } from 'mqtt';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { connectNode } from '../../cloud-hub/src/testing/node-client.ts';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';

/** Debian's Chromium. */
export const CHROMIUM = process.env.CITYSENSE_CHROMIUM ?? '/usr/bin/chromium';
/** Flags for a quiet, offline, headless Chromium. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const CONSOLE_DIR = fileURLToPath(new URL('..', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** Where tests write their screenshots (git-ignored). */
export const SCREENSHOTS = join(CONSOLE_DIR, 'e2e', 'screenshots');

/** Why Chromium cannot run here, or undefined when it can. */
export function chromiumUnavailableReason(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (apt-get install chromium)`;
  const probe = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (probe.error) return `${CHROMIUM} --version failed: ${probe.error.message}`;
  return /Chromium \d+/.test(`${probe.stdout}`) ? undefined : `${CHROMIUM} --version printed no version`;
}

/** True when the browser tests should be skipped: Chromium is missing and this is not CI (CI must run them). */
export function shouldSkipChromium(): boolean {
  const reason = chromiumUnavailableReason();
  if (reason && process.env.CI) throw new Error(`CI must run the console tests: ${reason}`);
  return reason !== undefined;
}

/** Suite title that says why it is skipped. */
export function chromiumSuiteTitle(title: string): string {
  const reason = chromiumUnavailableReason();
  return reason ? `${title} (skipped: ${reason})` : title;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds console/dist when it is missing or older than console/src (what `npm install` does via prepare). */
export async function ensureConsoleBuilt(): Promise<void> {
  const index = join(CONSOLE_DIR, 'dist', 'index.html');
  const sources = Math.max(
    newestMtime(join(CONSOLE_DIR, 'src')),
    statSync(join(CONSOLE_DIR, 'vite.config.ts')).mtimeMs,
  );
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const vite = join(REPO, 'node_modules', 'vite', 'bin', 'vite.js');
  const child = spawn(process.execPath, [vite, 'build', '--config', join(CONSOLE_DIR, 'vite.config.ts')], {
    cwd: CONSOLE_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`console build failed (${code}):\n${output}`);
}

/** A fresh headless Chromium with its own profile. */
export interface TestBrowser {
  context: BrowserContext;
  newPage(width: number, height: number): Promise<Page>;
  close(): Promise<void>;
}

/** Launches Chromium with a fresh user-data-dir. */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'citysense-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
    timeout: 120_000,
  });
  context.setDefaultTimeout(60_000);
  await mkdir(SCREENSHOTS, { recursive: true });
  return {
    context,
    async newPage(width, height) {
      const page = await context.newPage();
      await page.setViewportSize({ width, height });
      return page;
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** A Sparkplug node that has said NBIRTH (online until closed). */
export interface OnlineNode {
  nodeId: string;
  client: MqttClient;
}

/** Users the console tests sign in as. */
export const USERS = {
  admin: { username: 'pa', password: 'console-test-password-1', displayName: '平台管理员' },
  operator: { username: 'op', password: 'console-test-password-2', displayName: 'Dongcheng operator' },
} as const;

/** Demo area: Chang'an Avenue, Beijing (as cli/fleet.ts). */
export const DEMO = { lon: 116.3975, lat: 39.9087 };

/** A hub with users, poles, ledger devices and gateways, for the console. */
export interface ConsoleHub {
  t: TestHub;
  url: string;
  online: OnlineNode[];
  stop(): Promise<void>;
}

async function ok<T>(p: Promise<{ status: number; body: T }>, what: string): Promise<T> {
  const res = await p;
  if (res.status >= 300) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Enrols a gateway at a position (as an agent does). */
async function enrollAt(t: TestHub, name: string, lon: number, lat: number, poleId?: string) {
  const created = await ok(t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name }), 'token');
  const keys = generateEd25519();
  const body = await ok(
    t.api<{ nodeId: string; groupId: string; mqtt: { password: string; url: string } }>(
      'POST',
      '/v1/nodes/enroll',
      {
        token: created.token,
        publicKey: keys.publicKey,
        signature: signEd25519(keys.privateKey, `${created.token}\n${keys.publicKey}`),
        location: { lon, lat },
        ...(poleId ? { poleId } : {}),
      },
      null,
    ),
    'enrol',
  );
  return body;
}

/** Starts a hub serving the built console and fills it with a small city. */
export async function startConsoleHub(): Promise<ConsoleHub> {
  await ensureConsoleBuilt();
  const t = await startTestHub();
  const online: OnlineNode[] = [];
  try {
    await ok(t.api('PUT', '/v1/agencies/bdb', { name: '大数据局', kind: 'platform' }), 'agency bdb');
    await ok(
      t.api('PUT', '/v1/agencies/dongcheng', { name: '东城区', kind: 'district' }),
      'agency dongcheng',
    );
    await ok(t.api('PUT', '/v1/agencies/citymgmt', { name: '城管委', kind: 'bureau' }), 'agency citymgmt');
    await ok(
      t.api('POST', '/v1/users', {
        ...USERS.admin,
        agencyId: 'bdb',
        roles: [{ role: 'platform-admin' }],
      }),
      'admin user',
    );
    await ok(
      t.api('POST', '/v1/users', {
        ...USERS.operator,
        agencyId: 'dongcheng',
        roles: [{ role: 'agency-operator' }],
      }),
      'operator user',
    );
    // 240 poles: the avenue plus a grid of side streets, so that the map clusters.
    const poles = Array.from({ length: 240 }, (_, i) => ({
      id: `DC-L-${String(i + 1).padStart(4, '0')}`,
      kind: i % 5 === 0 ? 'traffic' : 'lamp',
      ownerAgency: i % 3 === 0 ? 'citymgmt' : 'dongcheng',
      longitude: +(DEMO.lon + 0.0021 * (i % 24)).toFixed(6),
      latitude: +(DEMO.lat + 0.0016 * Math.floor(i / 24) - 0.008).toFixed(6),
      road: '长安街',
      powerStatus: i % 17 === 0 ? 'fault' : 'ok',
      networkKind: 'fibre',
      networkStatus: 'up',
      powerBudgetW: 200,
      slots: 4,
    }));
    const report = await ok(t.api<{ applied: number }>('POST', '/v1/carriers/bulk', poles), 'carriers');
    if (report.applied !== poles.length) throw new Error(`only ${report.applied} poles applied`);
    const devices = Array.from({ length: 60 }, (_, i) => ({
      kind: i % 4 === 0 ? 'camera' : i % 4 === 1 ? 'air-quality' : i % 4 === 2 ? 'noise' : 'water-level',
      ownerAgency: i % 2 === 0 ? 'dongcheng' : 'citymgmt',
      longitude: +(DEMO.lon + 0.0021 * (i % 24) + 0.0003).toFixed(6),
      latitude: +(DEMO.lat + 0.0016 * Math.floor(i / 24) - 0.0077).toFixed(6),
      poleId: poles[i]?.id,
      state: i % 6 === 0 ? 'proposed' : 'active',
      ...(i % 4 === 0 ? { gb35114Level: 'B' } : {}),
    }));
    const filed = await ok(
      t.api<{ applied: number; errors: unknown[] }>('POST', '/v1/ledger/devices/bulk', devices),
      'ledger',
    );
    if (filed.applied !== devices.length) throw new Error(`ledger: ${JSON.stringify(filed.errors)}`);
    // Three gateways on the avenue; two of them come online.
    for (let i = 1; i <= 3; i++) {
      const at = { lon: +(DEMO.lon + 0.0021 * i).toFixed(6), lat: DEMO.lat };
      const creds = await enrollAt(t, `pole-00${i}`, at.lon, at.lat);
      if (i === 3) continue;
      const client = await connectNode(creds.mqtt.url, creds.nodeId, creds.mqtt.password);
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
      online.push({ nodeId: creds.nodeId, client });
    }
  } catch (e) {
    await t.stop();
    throw e;
  }
  return {
    t,
    url: `${t.httpUrl}/`,
    online,
    async stop() {
      for (const n of online) await n.client.endAsync();
      await t.stop();
    },
  };
}

/** Signs in on the login page. */
export async function login(
  page: Page,
  url: string,
  user: { username: string; password: string },
): Promise<void> {
  await page.goto(url);
  await page.locator('input[name=username]').fill(user.username);
  await page.locator('input[name=password]').fill(user.password);
  await page.locator('button[type=submit]').click();
}

/** Time limit of a console e2e hook or flow: a hub start, a Chromium launch, a whole user flow. */
export const E2E_TIMEOUT = 180_000;

/** Saves `e2e/screenshots/<name>.png`, the whole page unless `fullPage` is false. */
export async function shoot(page: Page, name: string, { fullPage = true } = {}): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage });
}

/** A user to create for a test and sign in as. */
export interface ConsoleUser {
  username: string;
  password: string;
  displayName: string;
}

/** Creates `user` in `agencyId` with `roles` through the API; throws with the hub's answer when it refuses. */
export async function createUser(
  t: TestHub,
  user: ConsoleUser,
  agencyId: string,
  roles: Array<{ role: string; category?: string }>,
): Promise<void> {
  const res = await t.api('POST', '/v1/users', { ...user, agencyId, roles });
  if (res.status !== 201) throw new Error(`user ${user.username}: ${res.status} ${JSON.stringify(res.body)}`);
}

/** The hub and browser one console test file shares; set once `useConsoleHub`'s beforeAll ran. */
export interface ConsoleSuite {
  readonly hub: ConsoleHub;
  readonly browser: TestBrowser;
  /** A new page of `width`×`height` (default 1280×800), signed in as `user`. */
  loginAs(user: { username: string; password: string }, width?: number, height?: number): Promise<Page>;
}

/**
 * Starts a console hub and Chromium once for the calling test file (beforeAll) and stops
 * them afterwards (afterAll). `setup` runs once both are up; `teardown` before they stop.
 */
export function useConsoleHub(
  hooks: { setup?(suite: ConsoleSuite): Promise<void>; teardown?(): Promise<void> } = {},
): ConsoleSuite {
  let hub: ConsoleHub | undefined;
  let browser: TestBrowser | undefined;
  const suite: ConsoleSuite = {
    get hub() {
      if (!hub) throw new Error('the console hub is not started (use it inside a test)');
      return hub;
    },
    get browser() {
      if (!browser) throw new Error('Chromium is not launched (use it inside a test)');
      return browser;
    },
    async loginAs(user, width = 1280, height = 800) {
      const page = await suite.browser.newPage(width, height);
      await login(page, suite.hub.url, user);
      return page;
    },
  };
  beforeAll(async () => {
    [hub, browser] = await Promise.all([startConsoleHub(), launchBrowser()]);
    await hooks.setup?.(suite);
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await hooks.teardown?.();
    await browser?.close();
    await hub?.stop();
  }, E2E_TIMEOUT);
  return suite;
}
