/**
 * Agency operator, main flows in Chromium: search the ledger, register a camera next to
 * an existing one and answer the duplicate-build warning, import a CSV with a bad row and
 * read the row error report; apply to share another agency's device, apply to mount on a
 * pole, apply for data access.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  chromiumSuiteTitle,
  E2E_TIMEOUT,
  SCREENSHOTS,
  shoot,
  shouldSkipChromium,
  USERS,
  useConsoleHub,
} from './harness.ts';

interface Device {
  code: string;
  kind: string;
  ownerAgency: string;
  longitude: number;
  latitude: number;
  state: string;
}

describe.skipIf(shouldSkipChromium())(chromiumSuiteTitle('console: agency operator'), () => {
  const con = useConsoleHub();

  it(
    'registers a device, sees the duplicate warning next to a camera, imports a CSV and reads the row errors',
    async () => {
      const cameras = await con.hub.t.api<Device[]>(
        'GET',
        '/v1/ledger/devices?kind=camera&state=active&owner=dongcheng',
      );
      const existing = cameras.body[0];
      if (!existing) throw new Error('the harness filed no active camera');

      const page = await con.loginAs(USERS.operator);
      await page.locator('nav a[data-page=ledger]').click();
      // The list: the operator's own devices, searchable.
      await page.locator('table.data-table tbody tr').first().waitFor();
      await page.locator('select[name=kind]').selectOption('camera');
      await page.locator('form.filters button[type=submit]').click();
      await expect
        .poll(async () =>
          (await page.locator('table.data-table tbody tr td:nth-child(2)').allTextContents()).every(
            (k) => k === 'camera',
          ),
        )
        .toBe(true);
      await shoot(page, 'ledger-list-1280');

      // Register a camera 10 m north of the existing one.
      await page.locator('.work-tabs a[href="#/ledger/new"]').click();
      await page.locator('select[name=kind]').selectOption('camera');
      await page.locator('input[name=model]').fill('DS-2CD3T47');
      await page.locator('input[name=vendor]').fill('Hikvision');
      await page.locator('input[name=longitude]').fill(String(existing.longitude));
      await page.locator('input[name=latitude]').fill(String(existing.latitude + 10 / 111_195));
      await page.locator('input[name=installedOn]').fill('2026-11-20');
      await page.locator('input[name=network]').fill('fibre');
      await page.locator('input[name=dataItems]').fill('video, plate');
      await page.locator('form button[type=submit]').click();
      const registered = page.locator('[data-testid=registered]');
      await registered.waitFor();
      const code = await registered.getAttribute('data-code');
      expect(code).toMatch(/^\d{20}$/);
      const warning = page.locator('[data-testid=duplicate-check]');
      await warning.waitFor();
      expect(await warning.getAttribute('data-duplicates')).toBe('1');
      expect(await warning.textContent()).toContain(existing.code);
      expect(await warning.textContent()).toContain('50');
      await shoot(page, 'ledger-duplicate-1280');
      // Justify the new build; the device can go to review afterwards.
      await warning.locator('textarea[name=justify]').fill('覆盖路口北侧盲区，现有摄像机朝向不同');
      await warning.locator('form button[type=submit]').click();
      await page.locator('[data-testid=duplicate-resolved]').waitFor();

      // Its detail page: unified code and the lifecycle history from the chain.
      await page.locator(`[data-testid=registered] a[href="#/ledger/${code}"]`).click();
      await page.locator('[data-testid=device-history] li').nth(1).waitFor();
      expect(await page.locator('[data-testid=unified-code]').getAttribute('data-code')).toBe(code);
      await shoot(page, 'ledger-detail-1280');
      // The same page in English (the choice is kept in localStorage; switch back for the rest).
      await page.locator('.lang-switch').click();
      await page.locator('main h1', { hasText: 'Sensor ledger' }).waitFor();
      await shoot(page, 'ledger-detail-english-1280');
      await page.locator('.lang-switch').click();
      await page.locator('main h1', { hasText: '感知设备台账' }).waitFor();

      // Bulk import: three rows, the second has a latitude that is not a number.
      const csv = [
        'kind,model,vendor,ownerAgency,poleId,longitude,latitude,installedOn,dataItems',
        'noise,NS-1,Acme,dongcheng,DC-L-0100,116.4101,39.9001,2026-11-01,noise_db',
        'noise,NS-1,Acme,dongcheng,DC-L-0101,116.4102,north,2026-11-01,noise_db',
        'air-quality,AQ-2,Acme,dongcheng,DC-L-0102,116.4103,39.9003,,pm25;pm10',
      ].join('\n');
      const file = join(SCREENSHOTS, 'agency-import.csv');
      await writeFile(file, `${csv}\n`);
      await page.locator('.work-tabs a[href="#/ledger/import"]').click();
      await page.locator('input[type=file]').setInputFiles(file);
      await page.locator('form button[type=submit]').click();
      const report = page.locator('[data-testid=import-report]');
      await report.waitFor();
      expect(await report.getAttribute('data-applied')).toBe('2');
      expect(await report.getAttribute('data-failed')).toBe('1');
      expect(await page.locator('[data-testid=import-progress]').textContent()).toContain('3 / 3');
      const errorRow = report.locator('table.data-table tbody tr');
      expect(await errorRow.count()).toBe(1);
      expect(await errorRow.locator('td').nth(0).textContent()).toBe('3');
      expect(await errorRow.locator('td').nth(1).textContent()).toBe('latitude');
      await shoot(page, 'ledger-import-1280');

      await page.setViewportSize({ width: 834, height: 1112 });
      await shoot(page, 'ledger-import-tablet');
      await page.goto(`${con.hub.url}#/ledger/new`);
      await page.locator('input[name=longitude]').waitFor();
      await shoot(page, 'ledger-register-tablet');
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    "applies to share another agency's device and approves a request for its own",
    async () => {
      const t = con.hub.t;
      const theirs = (await t.api<Device[]>('GET', '/v1/ledger/devices?owner=citymgmt&state=active&limit=1'))
        .body[0];
      const ours = (await t.api<Device[]>('GET', '/v1/ledger/devices?owner=dongcheng&state=active&limit=1'))
        .body[0];
      if (!theirs || !ours) throw new Error('the harness filed no active devices');
      const incoming = await t.api<{ id: string }>('POST', '/v1/catalogue/shares', {
        device: ours.code,
        purpose: '城管委复用东城区设备做市容巡查',
        agency: 'citymgmt',
      });
      expect(incoming.status).toBe(201);

      const page = await con.loginAs(USERS.operator);
      await page.locator('nav a[data-page=reuse]').waitFor();
      await page.goto(`${con.hub.url}#/reuse?device=${theirs.code}`);
      expect(await page.locator('input[name=device]').inputValue()).toBe(theirs.code);
      await page.locator('input[name=purpose]').fill('复用城管委空气质量监测，避免重复建设');
      await page.locator('form button[type=submit]').click();
      await page.locator('[data-testid=share-applied]').waitFor();
      await page
        .locator(`[data-testid=shares-mine] tr:has-text("${theirs.code}") [data-state=pending]`)
        .waitFor();

      const request = page.locator(`[data-testid=shares-incoming] tr:has-text("${ours.code}")`);
      await request.locator('[data-state=pending]').waitFor();
      await page.locator('input[name=comment]').fill('同意，限市容巡查用途');
      await request.locator('button[data-do=approve]').click();
      await request.locator('[data-state=approved]').waitFor();
      await shoot(page, 'reuse-1280');
      await page.setViewportSize({ width: 834, height: 1112 });
      await shoot(page, 'reuse-tablet');
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    'filters poles by free capacity, applies to mount on one and decides a mount on its own pole',
    async () => {
      const t = con.hub.t;
      const ours = (await t.api<Device[]>('GET', '/v1/ledger/devices?owner=dongcheng&kind=noise&limit=1'))
        .body[0];
      const theirs = (await t.api<Device[]>('GET', '/v1/ledger/devices?owner=citymgmt&limit=1')).body[0];
      if (!ours || !theirs) throw new Error('the harness filed no devices');
      // citymgmt asks to mount on a dongcheng pole (DC-L-0002).
      const asked = await t.api('POST', '/v1/carriers/applications', {
        kind: 'mount',
        applicantAgency: 'citymgmt',
        poleId: 'DC-L-0002',
        deviceCode: theirs.code,
        powerW: 20,
        slots: 1,
      });
      expect(asked.status).toBe(201);

      const page = await con.loginAs(USERS.operator);
      await page.locator('nav a[data-page=carriers]').click();
      await page.locator('[data-testid=pole-count]').waitFor();
      await page.locator('input[name=minFreeSlots]').fill('4');
      await page.locator('input[name=minFreePowerW]').fill('150');
      await page.locator('form.filters button[type=submit]').click();
      const pole = page.locator('table.data-table tbody tr', { hasText: 'DC-L-0121' });
      await pole.waitFor();
      await pole.click();
      await page.locator('[data-testid=mount-form] input[name=deviceCode]').fill(ours.code);
      await page.locator('[data-testid=mount-form] input[name=powerW]').fill('12');
      await page.locator('[data-testid=mount-form] button[type=submit]').click();
      await page.locator('[data-testid=mount-applied]').waitFor();
      await page
        .locator(`[data-testid=mount-applications] tr:has-text("${ours.code}") [data-state=pending]`)
        .waitFor();

      const request = page.locator(`[data-testid=mount-applications] tr:has-text("${theirs.code}")`);
      await request.locator('button[data-do=approve]').click();
      await request.locator('[data-state=approved]').waitFor();
      await shoot(page, 'carriers-1280');
      await page.setViewportSize({ width: 834, height: 1112 });
      await shoot(page, 'carriers-tablet');
      await page.close();
    },
    E2E_TIMEOUT,
  );

  it(
    'applies for data access in the catalogue and grants an application for its own resource',
    async () => {
      const t = con.hub.t;
      for (const resource of [
        {
          id: 'air-quality.pm25',
          title: '全市 PM2.5 实时监测',
          deviceKind: 'air-quality',
          dataType: 'reading',
          item: 'pm25',
          ownerAgency: null,
          grade: 1,
          category: 'environment',
          forms: ['raw', 'analysis'],
        },
        {
          id: 'noise.dongcheng',
          title: '东城区噪声监测',
          deviceKind: 'noise',
          dataType: 'reading',
          item: 'noise_db',
          ownerAgency: 'dongcheng',
          grade: 1,
          category: 'environment',
          forms: ['raw', 'analysis'],
        },
      ]) {
        const res = await t.api('POST', '/v1/catalogue/resources', resource);
        if (res.status !== 201) throw new Error(`resource: ${res.status} ${JSON.stringify(res.body)}`);
      }
      const asked = await t.api('POST', '/v1/catalogue/applications', {
        resource: 'noise.dongcheng',
        form: 'analysis',
        purpose: '城管委夜间施工噪声执法',
        agency: 'citymgmt',
      });
      expect(asked.status).toBe(201);

      const page = await con.loginAs(USERS.operator);
      await page.locator('nav a[data-page=catalogue]').click();
      await page.locator('button[data-apply="air-quality.pm25"]').click();
      await page.locator('[data-testid=data-apply] select[name=form]').selectOption('analysis');
      await page.locator('[data-testid=data-apply] input[name=purpose]').fill('东城区大气污染防治考核');
      await page.locator('[data-testid=data-apply] button[type=submit]').click();
      await page.locator('[data-testid=data-applied]').waitFor();
      await page
        .locator('[data-testid=data-applications] tr:has-text("air-quality.pm25") [data-state=pending]')
        .waitFor();

      const request = page.locator('[data-testid=data-applications] tr:has-text("citymgmt")');
      await request.locator('button[data-do=grant]').click();
      await request.locator('[data-state=granted]').waitFor();
      await shoot(page, 'catalogue-1280');
      await page.setViewportSize({ width: 834, height: 1112 });
      await shoot(page, 'catalogue-tablet');
      await page.close();
    },
    E2E_TIMEOUT,
  );
});
