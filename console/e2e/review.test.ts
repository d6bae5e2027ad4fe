/**
 * Joint-review official, main flow in Chromium: open the inbox, open a project, see the
 * proposed camera on the map next to the standing one, approve with a comment; the
 * operator installs and activates it, and it shows as active on the map page.
 */
import { describe, expect, it } from 'vitest';
import {
  chromiumSuiteTitle,
  createUser,
  E2E_TIMEOUT,
  shoot,
  shouldSkipChromium,
  USERS,
  useConsoleHub,
} from './harness.ts';

const REVIEWER = {
  username: 'police-rv',
  password: 'console-test-password-3',
  displayName: '东城公安审查员',
};

interface Device {
  code: string;
  longitude: number;
  latitude: number;
}
type DrawnItem = { x: number; y: number; count: number; key: string };
type RendererLike = {
  view: { cx: number; cy: number; zoom: number };
  panBy(dx: number, dy: number): void;
  zoomBy(delta: number): void;
  draw(): void;
  drawnItems(): DrawnItem[];
};
type TestWindow = { citysenseMap?: { renderer: RendererLike }; citysenseReviewMap?: RendererLike };

async function ok<T>(p: Promise<{ status: number; body: T }>, what: string): Promise<T> {
  const res = await p;
  if (res.status >= 300) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

describe.skipIf(shouldSkipChromium())(chromiumSuiteTitle('console: joint-review official'), () => {
  let proposed: Device;
  let standing: Device;
  let projectId: string;

  const con = useConsoleHub({
    async setup({ hub: { t } }) {
      await createUser(t, REVIEWER, 'bdb', [{ role: 'reviewer', category: 'video' }]);
      const cameras = await ok(
        t.api<Device[]>('GET', '/v1/ledger/devices?kind=camera&state=active&owner=dongcheng'),
        'cameras',
      );
      const first = cameras[0];
      if (!first) throw new Error('the harness filed no active camera');
      standing = first;
      // A level-A camera 12 m north of a standing one: a duplicate build, justified, and flagged low.
      proposed = await ok(
        t.api<Device>('POST', '/v1/ledger/devices', {
          kind: 'camera',
          model: 'IPC-A1',
          ownerAgency: 'dongcheng',
          longitude: standing.longitude,
          latitude: standing.latitude + 12 / 111_195,
          gb35114Level: 'A',
        }),
        'proposed camera',
      );
      await ok(
        t.api('POST', `/v1/ledger/devices/${proposed.code}/resolution`, {
          justify: '北向车道需要独立取证视角，现有设备朝南',
        }),
        'justify',
      );
      const project = await ok(
        t.api<{ id: string }>('POST', '/v1/review/projects', {
          name: '东长安街北侧路口补盲',
          purpose: '路口北向车道违法取证',
          agencyId: 'dongcheng',
          devices: [{ code: proposed.code }],
        }),
        'project',
      );
      projectId = project.id;
      await ok(t.api('POST', `/v1/review/projects/${projectId}/submit`), 'submit');
      await ok(t.api('POST', `/v1/review/projects/${projectId}/route`, {}), 'route');
    },
  });

  it(
    'approves a project from the inbox with a comment, and the device turns active on the map',
    async () => {
      const page = await con.loginAs(REVIEWER);
      await page.locator('nav a[data-page=review]').click();
      const row = page.locator('table.data-table tbody tr', { hasText: '东长安街北侧路口补盲' });
      await row.waitFor();
      await shoot(page, 'review-inbox-1280');
      await row.locator('a').click();

      // The project: proposed camera, the standing one within 50 m, the low level flagged.
      await page.locator('[data-testid=project]').waitFor();
      expect(await page.locator('[data-testid=nearby-count]').getAttribute('data-count')).toBe('1');
      expect(await page.locator('[data-flag=GB35114_LEVEL_LOW]').count()).toBe(1);
      await page.locator('[data-testid=review-flags]').waitFor();
      await expect
        .poll(() =>
          page.evaluate(() =>
            ((globalThis as unknown as TestWindow).citysenseReviewMap?.drawnItems() ?? [])
              .map((d) => d.key)
              .sort(),
          ),
        )
        .toEqual([`ledger:${proposed.code}`, `ledger:${standing.code}`].sort());
      await shoot(page, 'review-project-1280');

      await page
        .locator('[data-testid=decide-form] textarea[name=comment]')
        .fill('同意建设，请按 B 级以上设备采购');
      await page.locator('[data-testid=decide-form] button[data-decision=approve]').click();
      await page.locator('[data-testid=project][data-state=approved]').waitFor();
      await page.locator('[data-testid=review-history] li[data-action=approved]').waitFor();
      expect(
        await page
          .locator('[data-testid=review-categories] li[data-category=video]')
          .getAttribute('data-state'),
      ).toBe('approved');
      expect(await page.locator('[data-testid=review-history]').textContent()).toContain('同意建设');
      await shoot(page, 'review-approved-1280');
      await page.setViewportSize({ width: 834, height: 1112 });
      await shoot(page, 'review-approved-tablet');
      await page.close();

      // The operator installs it and puts it in service (approved → installed → active).
      const op = await con.loginAs(USERS.operator);
      await op.locator('nav a[data-page=map]').waitFor();
      await op.goto(`${con.hub.url}#/ledger/${proposed.code}`);
      await op.locator('button[data-move=installed]').click();
      await op.locator('button[data-move=active]').click();
      await op.locator('.panel h2 .pill[data-state=active]').waitFor();

      // On the map: centre on the device at street level and open its details.
      await op.locator('nav a[data-page=map]').click();
      await expect
        .poll(() => op.locator('[data-testid=map-count]').textContent(), { timeout: 60_000 })
        .toMatch(/\d/);
      await expect
        .poll(() =>
          op.evaluate(
            () => ((globalThis as unknown as TestWindow).citysenseMap?.renderer.drawnItems() ?? []).length,
          ),
        )
        .toBeGreaterThan(0);
      const target = await op.evaluate(
        ({ lon, lat, key }) => {
          const r = (globalThis as unknown as TestWindow).citysenseMap?.renderer;
          if (!r) return null;
          const x = (lon + 180) / 360;
          const s = Math.sin((lat * Math.PI) / 180);
          const y = 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
          r.zoomBy(19 - r.view.zoom);
          const scale = 256 * 2 ** r.view.zoom;
          r.panBy((r.view.cx - x) * scale, (r.view.cy - y) * scale);
          r.draw();
          return r.drawnItems().find((d) => d.key === key) ?? null;
        },
        { lon: proposed.longitude, lat: proposed.latitude, key: `ledger:${proposed.code}` },
      );
      if (!target) throw new Error('the device is not drawn on the map');
      const box = await op.locator('canvas.map-canvas').boundingBox();
      if (!box) throw new Error('no canvas');
      await op.mouse.click(box.x + target.x, box.y + target.y);
      const details = op.locator('[data-testid=details]');
      await details.waitFor();
      expect(await details.textContent()).toContain(proposed.code);
      expect(await details.textContent()).toContain('active');
      await shoot(op, 'review-device-active-map-1280');
      await op.close();
    },
    E2E_TIMEOUT,
  );
});
