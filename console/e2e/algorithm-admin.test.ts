/**
 * The algorithm-centre admin's main flow in Chromium: upload the reference YOLOX-nano
 * package (packed and signed in the test), run the adaptation test, file and publish it,
 * grant it to an agency, deploy it to that agency's nodes and watch every node reach
 * `active` on the live rollout page, reported by simulated agents (fleet-agents.ts).
 */
import { describe, expect, it } from 'vitest';
import { enrollNode, type FleetNode } from '../../cloud-hub/src/deployments/test-fleet.ts';
import { type FleetAgents, packReference, startAgents } from './fleet-agents.ts';
import {
  chromiumSuiteTitle,
  createUser,
  E2E_TIMEOUT,
  shoot,
  shouldSkipChromium,
  useConsoleHub,
} from './harness.ts';

const ALGO_ADMIN = { username: 'algo', password: 'console-test-password-3', displayName: '算法中心管理员' };

describe.skipIf(shouldSkipChromium())(chromiumSuiteTitle('algorithm-centre admin in Chromium'), () => {
  let fleet: FleetNode[];
  let agents: FleetAgents | undefined;
  let pkg: { path: string; dispose(): Promise<void> } | undefined;

  const con = useConsoleHub({
    async setup({ hub: { t } }) {
      await createUser(t, ALGO_ADMIN, 'bdb', [{ role: 'algorithm-admin' }]);
      pkg = await packReference(t, '1.0.0');
      fleet = [];
      for (let i = 1; i <= 3; i++) fleet.push(await enrollNode(t, `xicheng-${i}`));
      await t.api('PUT', '/v1/agencies/xicheng', { name: '西城区', kind: 'district' });
      const members = await t.api('PUT', '/v1/agencies/xicheng/nodes', {
        nodeIds: fleet.map((n) => n.nodeId),
      });
      if (members.status !== 200) throw new Error(`agency nodes: ${JSON.stringify(members.body)}`);
      agents = startAgents(t, fleet);
    },
    async teardown() {
      await agents?.stop();
      await pkg?.dispose();
    },
  });

  it(
    'uploads, validates, files and publishes YOLOX-nano, deploys it and watches every node reach active',
    async () => {
      const page = await con.loginAs(ALGO_ADMIN);
      await page.locator('nav a[data-page=algorithms]').click();
      await page.locator('#algo-title').waitFor();
      await page.locator('input[name=package]').setInputFiles(pkg?.path ?? '');
      const state = page.locator('[data-testid=version-state]');
      await page.locator('[data-testid=version-detail]').waitFor();
      expect(await state.textContent()).toBe('草稿');
      expect(await page.locator('.toast').textContent()).toContain('yolox-nano 1.0.0');

      await page.locator('button[data-action=validate]').click();
      await page.locator('[data-testid=validation-report] [data-passed=true]').waitFor({ timeout: 90_000 });
      await page.locator('[data-testid=version-state]', { hasText: '已适配' }).waitFor();
      expect(await page.locator('[data-testid=validation-report] tbody tr').count()).toBeGreaterThan(0);
      expect(await page.locator('[data-testid=validation-report] .facts').textContent()).toContain(
        '[1×3×416×416]',
      );
      await shoot(page, 'algorithms-report-1280');

      await page.locator('button[data-action=file]').click();
      await page.locator('[data-testid=version-state]', { hasText: '已备案' }).waitFor();
      await page.locator('button[data-action=publish]').click();
      await page.locator('[data-testid=version-state]', { hasText: '已发布' }).waitFor();

      // The centre grants the algorithm to the district; the district grants it on to its nodes.
      await page.locator('select[name=grant-xicheng]').selectOption('yolox-nano');
      await page.locator('button[data-grant=xicheng]').click();
      await page.locator('.chip', { hasText: 'yolox-nano' }).first().waitFor();
      const nodeGrants = await con.hub.t.api('POST', '/v1/agencies/xicheng/node-grants', {
        algorithmId: 'yolox-nano',
        nodeIds: fleet.map((n) => n.nodeId),
      });
      expect(nodeGrants.status).toBe(200);

      await page.locator('nav a[data-page=deployments]').click();
      await page.locator('#deploy-title').waitFor();
      await page.locator('[data-testid=new-deployment]').click();
      const form = page.locator('[data-testid=create-deployment]');
      await form.waitFor();
      expect(await form.locator('select[name=version]').inputValue()).toBe('yolox-nano@1.0.0');
      await form.locator('input[name=agency][value=xicheng]').check();
      await form.locator('input[name=canary]').fill('34');
      await shoot(page, 'deployments-create-1280');
      await form.locator('button[type=submit]').click();

      await page.locator('[data-testid=deployment]').waitFor();
      expect(await page.locator('[data-node-state]').count()).toBe(3);
      await page.locator('[data-testid=deployment][data-state=completed]').waitFor({ timeout: 60_000 });
      const states = await page
        .locator('[data-node-state]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-node-state')));
      expect(states).toEqual(['active', 'active', 'active']);
      expect(await page.locator('[data-testid=deployment-state]').textContent()).toBe('已完成');
      await shoot(page, 'deployment-live-1280');

      // Every node went through the download the agents reported, as the page showed it live.
      const id = decodeURIComponent(page.url().split('#/deployments/')[1] ?? '');
      const events = await con.hub.t.api<Array<{ nodeId: string | null; toState: string }>>(
        'GET',
        `/v1/deployments/${id}/events`,
      );
      for (const n of fleet)
        expect(events.body.filter((e) => e.nodeId === n.nodeId).map((e) => e.toState)).toEqual(
          expect.arrayContaining(['downloading', 'verifying', 'loading', 'active']),
        );

      await page.setViewportSize({ width: 834, height: 1112 });
      await page.locator('[data-testid=deployment]').waitFor();
      await shoot(page, 'deployment-live-834');
      await page.goto(`${con.hub.url}#/algorithms/yolox-nano/1.0.0`);
      await page.locator('[data-testid=validation-report]').waitFor();
      await shoot(page, 'algorithms-834');

      // Roll back: every node gives the version up.
      await page.goto(`${con.hub.url}#/deployments/${encodeURIComponent(id)}`);
      page.once('dialog', (d) => void d.accept());
      await page.locator('button[data-action=rollback]').click();
      await page.locator('[data-testid=deployment][data-state=rolled-back]').waitFor();
      await page.close();
    },
    E2E_TIMEOUT,
  );
});
