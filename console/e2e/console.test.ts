import { DataType, encodePayload } from '@citysense/protocol';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import {
  chromiumSuiteTitle,
  E2E_TIMEOUT,
  shoot,
  shouldSkipChromium,
  USERS,
  useConsoleHub,
} from './harness.ts';

/** This file's screenshots show the viewport, not the whole page. */
const shot = (page: Page, name: string) => shoot(page, name, { fullPage: false });

/** What the map page exposes for tests (console/src/pages/map/index.tsx, MapTestHandle). */
type DrawnItem = { x: number; y: number; count: number; key: string };
type MapWindow = {
  citysenseMap?: { renderer: { drawnItems(): DrawnItem[] } };
  requestAnimationFrame(cb: () => void): number;
};

type KeyboardWindow = { citysenseMap?: { renderer: { view: { cx: number; cy: number; zoom: number } } } };

/** Waits for the page's next animation frame. */
function nextFrame(page: Page): Promise<unknown> {
  return page.evaluate(
    () => new Promise((r) => (globalThis as unknown as MapWindow).requestAnimationFrame(() => r(true))),
  );
}

/** Screen items the map drew last (clusters and single points), in canvas coordinates. */
function drawnItems(page: Page): Promise<DrawnItem[]> {
  return page.evaluate(() => (globalThis as unknown as MapWindow).citysenseMap?.renderer.drawnItems() ?? []);
}

describe.skipIf(shouldSkipChromium())(chromiumSuiteTitle('web console in Chromium'), () => {
  const con = useConsoleHub();

  it(
    'shows an API error with its code, message and what to do (wrong password)',
    async () => {
      const page = await con.loginAs({ username: USERS.admin.username, password: 'not-the-password' });
      const error = page.locator('[role=alert][data-code]');
      await error.waitFor();
      expect(await error.getAttribute('data-code')).toBe('CS_ERR_AUTH_LOGIN_FAILED');
      expect(await error.locator('.error-code').textContent()).toBe('CS_ERR_AUTH_LOGIN_FAILED');
      expect(await error.locator('.error-hint').textContent()).toContain('用户名和密码');
      await shot(page, 'login-error-1280');
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    'signs in with the admin token that npm start prints',
    async () => {
      const page = await con.browser.newPage(1280, 800);
      await page.goto(con.hub.url);
      await page.locator('.login-card .link-button').click();
      await page.locator('input[name=token]').fill(con.hub.t.adminToken);
      await page.locator('button[type=submit]').click();
      await page.locator('[data-testid=user-name]').waitFor();
      expect(await page.locator('[data-testid=user-name]').textContent()).toBe('平台管理员令牌');
      expect(await page.locator('nav a[data-page=algorithms]').count()).toBe(1);
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    'signs a platform admin in: the header shows nodes online and every page is in the navigation',
    async () => {
      const page = await con.loginAs(USERS.admin);
      const nodes = page.locator('[data-testid=nodes-online] .health-value');
      await expect.poll(() => nodes.textContent(), { timeout: 60_000 }).toBe('2 / 3');
      for (const id of [
        'map',
        'fleet',
        'ledger',
        'review',
        'algorithms',
        'deployments',
        'video',
        'operations',
      ])
        expect(await page.locator(`nav a[data-page=${id}]`).count(), id).toBe(1);
      expect(await page.locator('[data-testid=user-name]').textContent()).toBe(USERS.admin.displayName);
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    'draws poles, gateways and devices in clusters, and opens the details of a clicked point',
    async () => {
      const page = await con.loginAs(USERS.admin);
      const count = page.locator('[data-testid=map-count]');
      // 240 poles + 60 ledger devices + 3 gateways.
      await expect.poll(() => count.textContent(), { timeout: 60_000 }).toBe('303 / 303 个点位');
      await expect
        .poll(async () => (await drawnItems(page)).some((d) => d.count > 1), { timeout: 30_000 })
        .toBe(true);
      await shot(page, 'map-admin-1280');

      const canvas = page.locator('canvas.map-canvas');
      const box = await canvas.boundingBox();
      if (!box) throw new Error('no canvas');
      // Click clusters until a single point is drawn, then click that point.
      let single = (await drawnItems(page)).find((d) => d.count === 1);
      for (let i = 0; !single && i < 6; i++) {
        const cluster = (await drawnItems(page)).find((d) => d.count > 1);
        if (!cluster) break;
        await page.mouse.click(box.x + cluster.x, box.y + cluster.y);
        await nextFrame(page);
        single = (await drawnItems(page)).find((d) => d.count === 1);
      }
      if (!single) throw new Error('no single point after zooming in');
      await page.mouse.click(box.x + single.x, box.y + single.y);
      const details = page.locator('[data-testid=details]');
      await details.waitFor();
      const id = single.key.slice(single.key.indexOf(':') + 1);
      expect(await details.locator('code').first().textContent()).toBe(id);
      // Times are shown in the browser's zone (the context runs in Asia/Shanghai; the hub sends UTC).
      if (single.key.startsWith('pole:')) {
        const pole = await con.hub.t.api<{ properties: { updatedAt: string } }>('GET', `/v1/carriers/${id}`);
        const local = new Intl.DateTimeFormat('zh-CN', {
          dateStyle: 'medium',
          timeStyle: 'medium',
          timeZone: 'Asia/Shanghai',
        }).format(new Date(pole.body.properties.updatedAt));
        expect(await details.locator('[data-field=updated]').textContent()).toBe(local);
      }
      await shot(page, 'map-details-1280');

      // Filter by kind: only the gateways stay.
      for (const kind of ['pole', 'sensor', 'camera'])
        await page.locator(`input[data-kind=${kind}]`).uncheck();
      await expect.poll(() => count.textContent()).toBe('3 / 303 个点位');
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    'pans, zooms and selects on the map with the keyboard alone',
    async () => {
      const page = await con.loginAs(USERS.admin);
      await expect
        .poll(() => page.locator('[data-testid=map-count]').textContent(), { timeout: 60_000 })
        .toContain('303');
      const view = () =>
        page.evaluate(() => (globalThis as unknown as KeyboardWindow).citysenseMap?.renderer.view ?? null);
      await page.locator('canvas.map-canvas').focus();
      const before = await view();
      await page.keyboard.press('+');
      await page.keyboard.press('ArrowRight');
      const after = await view();
      if (!before || !after) throw new Error('no map view');
      expect(after.zoom).toBeCloseTo(before.zoom + 1, 5);
      expect(after.cx).toBeGreaterThan(before.cx);
      // Zoom to street level, then Enter opens the point nearest the centre; Escape closes it.
      for (let i = 0; i < 5; i++) await page.keyboard.press('+');
      await page.keyboard.press('0');
      for (let i = 0; i < 4; i++) await page.keyboard.press('+');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Enter');
      await page.locator('[data-testid=details]').waitFor();
      await page.keyboard.press('Escape');
      await page.locator('[data-testid=details]').waitFor({ state: 'detached' });
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    'hides admin navigation from an agency operator and opens its pages from the tablet drawer',
    async () => {
      const page = await con.loginAs(USERS.operator, 834, 1112);
      await page.locator('[data-testid=map-count]').waitFor();
      for (const id of ['map', 'ledger', 'reuse', 'carriers', 'catalogue', 'operations'])
        expect(await page.locator(`nav a[data-page=${id}]`).count(), id).toBe(1);
      for (const id of ['fleet', 'review', 'algorithms', 'deployments', 'video'])
        expect(await page.locator(`nav a[data-page=${id}]`).count(), id).toBe(0);
      // An operator's map has no gateway layer (the registry is the platform's), and no layer failed.
      await expect
        .poll(() => page.locator('[data-testid=map-count]').textContent(), { timeout: 60_000 })
        .toMatch(/\/ 270 /);
      expect(await page.locator('[data-testid=layer-errors]').count()).toBe(0);
      await shot(page, 'map-operator-tablet');

      // Tablet: the navigation is a drawer behind the menu button.
      await page.locator('.nav-toggle').click();
      await page.locator('nav a[data-page=ledger]').click();
      await page.locator('main h1').first().waitFor();
      expect(await page.locator('main h1').first().textContent()).toContain('感知设备台账');
      await shot(page, 'ledger-operator-tablet');
      await page.locator('.nav-toggle').click();
      await page.locator('nav a[data-page=ledger]').waitFor({ state: 'visible' });
      await shot(page, 'nav-drawer-tablet');
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    'switches to English and keeps the choice across reloads',
    async () => {
      const page = await con.loginAs(USERS.admin);
      await page.locator('nav a[data-page=map]').waitFor();
      expect(await page.locator('nav a[data-page=map]').textContent()).toContain('地图');
      await page.locator('.topbar .lang-switch').click();
      expect(await page.locator('nav a[data-page=map]').textContent()).toContain('Map');
      expect(await page.locator('html').getAttribute('lang')).toBe('en');
      await page.reload();
      await page.locator('nav a[data-page=map]').waitFor();
      expect(await page.locator('nav a[data-page=map]').textContent()).toContain('Map');
      await expect
        .poll(() => page.locator('[data-testid=map-count]').textContent(), { timeout: 60_000 })
        .toBe('303 / 303 points');
      await shot(page, 'map-admin-english-1280');
      await page.locator('.topbar .lang-switch').click();
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    'updates the header live when a gateway goes offline',
    async () => {
      const page = await con.loginAs(USERS.admin);
      const nodes = page.locator('[data-testid=nodes-online] .health-value');
      await expect.poll(() => nodes.textContent(), { timeout: 60_000 }).toBe('2 / 3');
      await page.locator('.live-dot.on').waitFor();
      const gone = con.hub.online[0];
      if (!gone) throw new Error('no online node');
      await gone.client.publishAsync(
        `spBv1.0/city/NDEATH/${gone.nodeId}`,
        Buffer.from(
          encodePayload({
            timestamp: Date.now(),
            metrics: [{ name: 'bdSeq', datatype: DataType.UInt64, value: 0 }],
          }),
        ),
        { qos: 1 },
      );
      await expect.poll(() => nodes.textContent(), { timeout: 60_000 }).toBe('1 / 3');
      await page.close();
    },
    E2E_TIMEOUT,
  );
});
