/**
 * Operations, main flow in Chromium: an agency operator creates an alarm rule (the hub's
 * CS_ERR_RULE_INVALID first, shown on the field it names), a simulated gateway of the
 * agency publishes readings over Sparkplug B, the alarm appears live, the operator
 * acknowledges it with a comment, the reading falls back and the alarm clears; the
 * operator then finds the acknowledgement in the audit log and verifies the ledger chain.
 */
import { join } from 'node:path';
import { DataType, encodePayload } from '@citysense/protocol';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConsoleHub,
  chromiumSuiteTitle,
  launchBrowser,
  login,
  SCREENSHOTS,
  shouldSkipChromium,
  startConsoleHub,
  type TestBrowser,
  USERS,
} from './harness.ts';

const LONG = 180_000;
const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
const PM = 2;

describe.skipIf(shouldSkipChromium())(chromiumSuiteTitle('console: operations'), () => {
  let hub: ConsoleHub;
  let browser: TestBrowser;
  let groupId: string;
  let seq = 0;

  /** Publishes a Sparkplug message of the harness's first online gateway. */
  const publish = async (type: string, device: string | undefined, metrics: unknown[]) => {
    const node = hub.online[0];
    if (!node) throw new Error('the harness has no online gateway');
    const s = type === 'NBIRTH' ? 0 : ++seq;
    if (type === 'NBIRTH') seq = 0;
    await node.client.publishAsync(
      `spBv1.0/${groupId}/${type}/${node.nodeId}${device ? `/${device}` : ''}`,
      Buffer.from(
        encodePayload({
          seq: s,
          timestamp: Date.now(),
          metrics: metrics as Parameters<typeof encodePayload>[0]['metrics'],
        }),
      ),
      { qos: 1 },
    );
  };
  const pm = (value: number) =>
    publish('DDATA', 'air', [{ alias: PM, timestamp: Date.now(), datatype: DataType.Double, value }]);

  beforeAll(async () => {
    [hub, browser] = await Promise.all([startConsoleHub(), launchBrowser()]);
    const node = hub.online[0];
    if (!node) throw new Error('the harness has no online gateway');
    const nodes = await hub.t.api<Array<{ id: string; groupId: string }>>('GET', '/v1/nodes');
    groupId = nodes.body.find((n) => n.id === node.nodeId)?.groupId ?? 'city';
    const set = await hub.t.api('PUT', '/v1/agencies/dongcheng/nodes', { nodeIds: [node.nodeId] });
    if (set.status !== 200) throw new Error(`agency nodes: ${JSON.stringify(set.body)}`);
    // The gateway declares an air-quality device with PM2.5 (Sparkplug 3.0 §6.4.7 aliases).
    await publish('NBIRTH', undefined, [{ name: 'bdSeq', datatype: DataType.UInt64, value: 0 }]);
    await publish('DBIRTH', 'air', [{ name: 'PM2.5', alias: PM, datatype: DataType.Double, value: null }]);
  }, LONG);
  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  }, LONG);

  it(
    'raises an alarm from a rule, acknowledges it, sees it clear, finds the ack in the audit log and verifies the ledger',
    async () => {
      const page = await browser.newPage(1280, 800);
      await login(page, hub.url, USERS.operator);
      await page.locator('nav a[data-page=operations]').click();
      await page.locator('a[data-tab=rules]').click();

      // The rule form: the hub refuses a clear value on the wrong side of the threshold.
      const form = page.locator('[data-testid=rule-form]');
      await form.locator('input[name=name]').fill('PM2.5 过高');
      await form.locator('input[name=metric]').fill('PM2.5');
      await form.locator('input[name=device]').fill('air');
      await form.locator('input[name=value]').fill('75');
      await form.locator('input[name=clearValue]').fill('90');
      expect(await form.locator('input[name=agency]').inputValue()).toBe('dongcheng');
      await form.locator('button[type=submit]').click();
      const refusal = page.locator('[role=alert][data-code=CS_ERR_RULE_INVALID]');
      await refusal.waitFor();
      expect(await form.locator('input[name=clearValue]').getAttribute('aria-invalid')).toBe('true');
      expect(await page.locator('#clearValue-error').textContent()).toContain('wrong side');
      await shot(page, 'ops-rule-invalid-1280');
      await form.locator('input[name=clearValue]').fill('50');
      await form.locator('button[type=submit]').click();
      await page.locator('table.data-table tbody tr', { hasText: 'PM2.5 过高' }).waitFor();

      // The gateway's PM2.5 goes over the threshold: the alarm shows up live.
      await page.locator('a[data-tab=alarms]').click();
      await page.locator('[data-testid=alarm-submit], table.data-table, .state-empty').first().waitFor();
      await pm(120);
      const row = page.locator('table.data-table tbody tr', { hasText: 'PM2.5 过高' });
      await row.waitFor({ timeout: 30_000 });
      expect(await row.locator('[data-state]').getAttribute('data-state')).toBe('active');
      await shot(page, 'ops-alarm-active-1280');

      // Acknowledge with a comment.
      await row.locator('button[data-action=ack]').click();
      await page.locator('input[name=comment]').fill('已派人到现场');
      await page.locator('[data-testid=alarm-submit]').click();
      await expect
        .poll(() => row.locator('[data-state]').getAttribute('data-state'), { timeout: 30_000 })
        .toBe('acknowledged');
      expect(await row.textContent()).toContain('已派人到现场');
      const alarms = await hub.t.api<Array<{ id: string; state: string }>>('GET', '/v1/alarms?state=open');
      const alarmId = alarms.body[0]?.id;
      expect(alarmId).toBeTruthy();

      // The reading falls below the clear value: the alarm clears (live event).
      await pm(30);
      await row.waitFor({ state: 'detached', timeout: 30_000 });
      await page.locator('select[name=alarmState]').selectOption('all');
      await expect
        .poll(() => row.locator('[data-state]').getAttribute('data-state'), { timeout: 30_000 })
        .toBe('cleared');
      await shot(page, 'ops-alarm-cleared-1280');

      // The audit log has the acknowledgement, by this operator.
      await page.locator('a[data-tab=audit]').click();
      await page.locator('input[name=actor]').fill(USERS.operator.username);
      await page.locator('input[name=action]').fill('http.write');
      await page.locator('form.audit-search button[type=submit]').click();
      const ack = page.locator('table.data-table tbody tr', { hasText: `/v1/alarms/${alarmId}/ack` });
      await ack.waitFor();
      expect(await ack.textContent()).toContain('POST /v1/alarms/:id/ack');
      await shot(page, 'ops-audit-1280');

      // Ledger chain verification.
      await page.locator('a[data-tab=ledger]').click();
      await page.locator('[data-testid=verify-ledger]').click();
      const result = page.locator('[data-testid=ledger-result]');
      await result.waitFor();
      expect(await result.textContent()).toContain('链完整');
      await shot(page, 'ops-ledger-1280');
      await page.close();
    },
    LONG,
  );

  it(
    'shows OTA campaigns and alarms on a tablet',
    async () => {
      const page = await browser.newPage(834, 1112);
      await login(page, hub.url, USERS.operator);
      await page.goto(`${hub.url}#/operations/ota`);
      await page.locator('.state-empty, table.data-table').first().waitFor();
      await shot(page, 'ops-ota-tablet');
      await page.goto(`${hub.url}#/operations/rules`);
      await page.locator('table.data-table tbody tr').first().waitFor();
      await shot(page, 'ops-rules-tablet');
      await page.close();
    },
    LONG,
  );
});
