/**
 * Field engineer, main flow in Chromium against a hub with simulated gateways and one
 * real edge agent: sign in, open the fleet, see the online nodes, open the agent's node,
 * run doctor and read the verdicts, tail the log, restart a driver (confirmed), then
 * enrol a new box and see its token, agent command and QR code. Also: the map shows
 * the field engineer the gateways (`/v1/nodes` is open to them now).
 */
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConsoleHub,
  chromiumSuiteTitle,
  DEMO,
  launchBrowser,
  login,
  SCREENSHOTS,
  shouldSkipChromium,
  startConsoleHub,
  type TestBrowser,
} from './harness.ts';
import { type RealAgent, startRealAgent } from './real-agent.ts';

const LONG = 180_000;
const ENGINEER = { username: 'fe', password: 'console-test-password-5', displayName: '现场工程师' };
const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

describe.skipIf(shouldSkipChromium())(chromiumSuiteTitle('console: field engineer'), () => {
  let hub: ConsoleHub;
  let browser: TestBrowser;
  let agent: RealAgent;

  beforeAll(async () => {
    [hub, browser] = await Promise.all([startConsoleHub(), launchBrowser()]);
    const user = await hub.t.api('POST', '/v1/users', {
      ...ENGINEER,
      agencyId: 'dongcheng',
      roles: [{ role: 'field-engineer' }],
    });
    if (user.status !== 201) throw new Error(`engineer: ${JSON.stringify(user.body)}`);
    agent = await startRealAgent(hub.t, {
      name: 'pole-017',
      agencyId: 'dongcheng',
      location: { lon: DEMO.lon + 0.0084, lat: DEMO.lat },
    });
  }, LONG);
  afterAll(async () => {
    await agent?.stop();
    await browser?.close();
    await hub?.stop();
  }, LONG);

  it(
    'opens the fleet, runs doctor on a node, tails its log, restarts a driver and enrols a new box',
    async () => {
      const page = await browser.newPage(1280, 800);
      await login(page, hub.url, ENGINEER);
      await page.locator('nav a[data-page=fleet]').click();

      // The fleet: the harness's gateways (no agency yet) and the real agent of dongcheng.
      const row = page.locator(`a.node-link[data-node="${agent.nodeId}"]`);
      await row.waitFor();
      const online = page.locator('table.data-table tbody [data-status=online]');
      await expect.poll(() => online.count(), { timeout: 30_000 }).toBe(hub.online.length + 1);
      expect(await page.locator('table.data-table tbody tr').count()).toBe(4);
      // Sparklines come from the continuous aggregate once the agent has sent health.
      await page.locator('[data-testid=fleet-summary]').waitFor();
      await shot(page, 'fleet-list-1280');

      // The node page: doctor report with a verdict per line.
      await row.click();
      await page.locator('#node-title').waitFor();
      expect(await page.locator('#node-title').textContent()).toContain('pole-017');
      await page.locator('[data-testid=health-charts]').waitFor();
      await page.locator('[data-testid=run-doctor]').click();
      const report = page.locator('[data-testid=doctor-report]');
      await report.waitFor({ timeout: 30_000 });
      expect(await report.locator('li[data-verdict]').count()).toBeGreaterThan(2);
      expect(
        await report.locator('li[data-verdict]', { hasText: 'hub' }).first().getAttribute('data-verdict'),
      ).toBe('ok');
      expect(
        await report.locator(`li[data-verdict=ok]`, { hasText: `driver:${agent.driverId}` }).count(),
      ).toBe(1);
      await page.locator('#node-title').scrollIntoViewIfNeeded();
      await shot(page, 'fleet-doctor-1280');

      // Remote log tail.
      await page.locator('[data-testid=fetch-log]').click();
      const log = page.locator('[data-testid=log-lines] li');
      await log.first().waitFor({ timeout: 30_000 });
      expect(await page.locator('[data-testid=log-lines]').textContent()).toContain('agent running');

      // Driver restart, confirmed first; the driver id comes from the doctor report.
      await page.locator('[data-testid=restart-driver]').click();
      await page.locator('[data-testid=confirm-restart]').click();
      const restarted = page.locator('[data-testid=driver-restarted]');
      await restarted.waitFor({ timeout: 30_000 });
      expect(await restarted.textContent()).toContain(agent.driverId);
      expect(agent.agent.status().drivers.find((d) => d.id === agent.driverId)?.restarts).toBe(1);

      // Following the log shows what the restart wrote.
      await page.locator('input[name=follow]').check();
      await page
        .locator('[data-testid=log-lines] li', { hasText: 'driver running' })
        .first()
        .waitFor({ timeout: 30_000 });
      await page.locator('input[name=follow]').uncheck();
      await shot(page, 'fleet-node-1280');

      // Enrol a new box: token, the exact agent command and its QR code.
      await page.locator('a.back-link').click();
      await page.locator('button[aria-expanded]', { hasText: /注册新网关/ }).click();
      await page.locator('input[name=enrolName]').fill('pole-018');
      await page.locator('.enrol-panel button[type=submit]').click();
      const token = await page.locator('[data-testid=token-value]').textContent();
      expect(token?.length).toBeGreaterThan(8);
      expect(await page.locator('[data-testid=token-command]').textContent()).toBe(
        `npx citysense agent --hub ${hub.url.replace(/\/$/, '')} --token ${token}`,
      );
      expect(await page.locator('[data-testid=token-qr] path').getAttribute('d')).toMatch(
        /^M\d+,\d+h1v1h-1z/,
      );
      const tokens = await hub.t.api<Array<{ name: string | null }>>('GET', '/v1/enrollment-tokens');
      expect(tokens.body.some((t) => t.name === 'pole-018')).toBe(true);
      await shot(page, 'fleet-enrol-1280');
      await page.close();
    },
    LONG,
  );

  it(
    'works on a tablet: node page and the gateways on the map',
    async () => {
      const page = await browser.newPage(834, 1112);
      await login(page, hub.url, ENGINEER);
      await page.goto(`${hub.url}#/fleet/${encodeURIComponent(agent.nodeId)}`);
      await page.locator('[data-testid=health-charts]').waitFor();
      await shot(page, 'fleet-node-tablet');
      await page.goto(`${hub.url}#/fleet`);
      await page.locator(`a.node-link[data-node="${agent.nodeId}"]`).waitFor();
      await shot(page, 'fleet-list-tablet');
      // The map asks /v1/nodes for the field engineer now: no layer error for gateways.
      await page.goto(`${hub.url}#/map`);
      const count = page.locator('[data-testid=map-count]');
      await expect
        .poll(async () => /[1-9]/.test((await count.textContent()) ?? ''), { timeout: 30_000 })
        .toBe(true);
      expect(await page.locator('[role=alert][data-code]').count()).toBe(0);
      await shot(page, 'fleet-map-tablet');
      await page.close();
    },
    LONG,
  );
});
