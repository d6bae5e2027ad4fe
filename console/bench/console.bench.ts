/**
 * Web console benchmark (`npm run bench:console`), in Debian's Chromium (headless):
 *  1. first load, cold (a new browser context each run: empty cache), local hub:
 *     navigation → load event, first contentful paint and first meaningful paint of
 *     the map (the first frame with points), against a blank page served from the
 *     same machine (baseline, same run);
 *  2. time to show 20,000 map points (projection, clustering, first frame) through the
 *     map's test handle, against 300 points (baseline, same run), and the cost of one
 *     pan frame with 20,000 points at a clustered and at a street zoom.
 *
 *   BENCH_RUNS=5 BENCH_POINTS=20000 npm run bench:console
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';

// The hub's JSON log would drown the figures; set before the hub's modules load (imported in main).
process.env.CITYSENSE_LOG_LEVEL ??= 'warn';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const POINTS = Number(process.env.BENCH_POINTS ?? 20_000);
const BASELINE_POINTS = 300;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

interface LoadFigures {
  load: number;
  fcp: number;
  mapPaint: number;
  bytes: number;
}

/** Loads `url` in a new context (cold cache) and reads its timings. */
async function coldLoad(browser: Browser, url: string, session?: string): Promise<LoadFigures> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    if (session)
      await context.addInitScript((s) => {
        (
          globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }
        ).sessionStorage.setItem('citysense.session', s);
      }, session);
    const page = await context.newPage();
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(
      () => performance.getEntriesByName('first-contentful-paint').length > 0,
      undefined,
      {
        timeout: 10_000,
      },
    );
    if (session)
      await page.waitForFunction(
        () => performance.getEntriesByName('citysense:map-first-paint').length > 0,
        undefined,
        { timeout: 60_000 },
      );
    return await page.evaluate(() => {
      type Timing = { startTime: number; loadEventEnd: number; transferSize: number };
      const nav = performance.getEntriesByType('navigation' as never)[0] as unknown as Timing | undefined;
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      const map = performance.getEntriesByName('citysense:map-first-paint')[0];
      const resources = performance.getEntriesByType('resource') as unknown as Timing[];
      return {
        load: nav ? nav.loadEventEnd - nav.startTime : Number.NaN,
        fcp: fcp?.startTime ?? Number.NaN,
        mapPaint: map?.startTime ?? Number.NaN,
        bytes: (nav?.transferSize ?? 0) + resources.reduce((n, r) => n + r.transferSize, 0),
      };
    });
  } finally {
    await context.close();
  }
}

/** Shows `n` generated points on the map page; returns index, frame and total times. */
function showPoints(page: Page, n: number): Promise<{ indexMs: number; frameMs: number; totalMs: number }> {
  return page.evaluate((count) => {
    // Deterministic spread over Beijing's central area, roughly 40 km × 40 km (no named
    // helpers: the bench runs through tsx, whose keepNames would reference __name here).
    const kinds = ['pole', 'gateway', 'sensor', 'camera'] as const;
    const statuses = ['ok', 'ok', 'ok', 'warn', 'bad', 'unknown'] as const;
    let seed = 42;
    const points: unknown[] = [];
    for (let i = 0; i < count; i++) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      const a = seed / 2 ** 32;
      seed = (seed * 1664525 + 1013904223) >>> 0;
      const b = seed / 2 ** 32;
      seed = (seed * 1664525 + 1013904223) >>> 0;
      const c = seed / 2 ** 32;
      points.push({
        key: `bench:${i}`,
        id: `bench-${i}`,
        kind: kinds[i % 4] ?? 'sensor',
        status: statuses[Math.floor(c * statuses.length)] ?? 'ok',
        state: 'bench',
        lon: 116.2 + a * 0.47,
        lat: 39.75 + b * 0.36,
        agency: `agency-${i % 7}`,
        label: `bench ${i}`,
        source: 'bench',
        facts: [],
      });
    }
    const handle = (globalThis as unknown as { citysenseMap?: { show(p: unknown[]): Promise<never> } })
      .citysenseMap;
    if (!handle) throw new Error('map test handle missing');
    return handle.show(points);
  }, n);
}

/** Average draw time of `frames` pan frames at `zoom` (world centre kept). */
function panFrames(page: Page, zoom: number, frames: number): Promise<number> {
  return page.evaluate(
    ({ z, n }) => {
      type R = {
        zoomBy(d: number): void;
        panBy(x: number, y: number): void;
        draw(): void;
        view: { zoom: number };
      };
      const r = (globalThis as unknown as { citysenseMap: { renderer: R } }).citysenseMap.renderer;
      r.zoomBy(z - r.view.zoom);
      r.draw();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        r.panBy(i % 2 ? 7 : -7, 3);
        r.draw();
      }
      return (performance.now() - t0) / n;
    },
    { z: zoom, n: frames },
  );
}

async function main(): Promise<void> {
  const { chromium } = await import('playwright-core');
  const { startTestHub } = await import('../../cloud-hub/src/testing/test-hub.ts');
  const { CHROMIUM, CHROMIUM_FLAGS, chromiumUnavailableReason, DEMO, ensureConsoleBuilt, USERS } =
    await import('../e2e/harness.ts');
  const reason = chromiumUnavailableReason();
  if (reason) {
    console.log(`console benchmark skipped: ${reason}`);
    return;
  }
  await ensureConsoleBuilt();
  const hub = await startTestHub();
  const blank = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html><head><title>blank</title></head><body><p>blank</p></body></html>');
  });
  await new Promise<void>((r) => blank.listen(0, '127.0.0.1', r));
  const blankUrl = `http://127.0.0.1:${(blank.address() as AddressInfo).port}/`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  try {
    await hub.api('PUT', '/v1/agencies/bdb', { name: '大数据局', kind: 'platform' });
    await hub.api('POST', '/v1/users', {
      ...USERS.admin,
      agencyId: 'bdb',
      roles: [{ role: 'platform-admin' }],
    });
    const poles = Array.from({ length: 300 }, (_, i) => ({
      id: `BENCH-${i}`,
      kind: 'lamp',
      ownerAgency: 'bdb',
      longitude: +(DEMO.lon + 0.0021 * (i % 30)).toFixed(6),
      latitude: +(DEMO.lat + 0.0016 * Math.floor(i / 30)).toFixed(6),
      powerBudgetW: 200,
      slots: 4,
    }));
    await hub.api('POST', '/v1/carriers/bulk', poles);
    const login = await hub.api<{ token: string; expiresAt: string }>(
      'POST',
      '/v1/auth/login',
      { username: USERS.admin.username, password: USERS.admin.password },
      null,
    );
    const me = await hub.api('GET', '/v1/auth/me', undefined, login.body.token);
    const session = JSON.stringify({ token: login.body.token, expiresAt: login.body.expiresAt, me: me.body });
    const consoleUrl = `${hub.httpUrl}/#/map`;

    // Warm the OS and the hub once; every measured run is a new, cold browser context.
    await coldLoad(browser, blankUrl);
    await coldLoad(browser, consoleUrl, session);
    const blanks: LoadFigures[] = [];
    const consoles: LoadFigures[] = [];
    const logins: LoadFigures[] = [];
    for (let i = 0; i < RUNS; i++) {
      blanks.push(await coldLoad(browser, blankUrl));
      logins.push(await coldLoad(browser, `${hub.httpUrl}/`));
      consoles.push(await coldLoad(browser, consoleUrl, session));
    }
    const b = median(blanks.map((f) => f.load));
    const version = browser.version();
    console.log(`console benchmark: Chromium ${version}, 1280×800, cold context per run, median of ${RUNS}`);
    console.log(
      `  blank page, local server (baseline)   load ${ms(b)}  FCP ${ms(median(blanks.map((f) => f.fcp)))}`,
    );
    const l = median(logins.map((f) => f.load));
    console.log(
      `  console login page                    load ${ms(l)} (${(l / b).toFixed(1)}× baseline)  FCP ${ms(median(logins.map((f) => f.fcp)))}  ${(median(logins.map((f) => f.bytes)) / 1024).toFixed(1)} kB transferred`,
    );
    const c = median(consoles.map((f) => f.load));
    const p = median(consoles.map((f) => f.mapPaint));
    console.log(
      `  console map, signed in                load ${ms(c)} (${(c / b).toFixed(1)}× baseline)  FCP ${ms(median(consoles.map((f) => f.fcp)))}  map first paint ${ms(p)} (${(p / b).toFixed(1)}× baseline load)  ${(median(consoles.map((f) => f.bytes)) / 1024).toFixed(1)} kB transferred`,
    );

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript((s) => {
      (
        globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }
      ).sessionStorage.setItem('citysense.session', s);
    }, session);
    const page = await context.newPage();
    await page.goto(consoleUrl, { waitUntil: 'load' });
    await page.waitForFunction(() => performance.getEntriesByName('citysense:map-first-paint').length > 0);
    await showPoints(page, BASELINE_POINTS);
    await showPoints(page, POINTS);
    const small: number[] = [];
    const large: Array<{ indexMs: number; frameMs: number; totalMs: number }> = [];
    for (let i = 0; i < RUNS; i++) {
      small.push((await showPoints(page, BASELINE_POINTS)).totalMs);
      large.push(await showPoints(page, POINTS));
    }
    const s = median(small);
    const t = median(large.map((x) => x.totalMs));
    console.log(
      `map render (points set in the page → filtered, projected, clustered, drawn; up to one frame of waiting)`,
    );
    console.log(`  ${BASELINE_POINTS} points (baseline)                  ${ms(s)}`);
    console.log(
      `  ${POINTS.toLocaleString('en')} points                       ${ms(t)} (${(t / s).toFixed(1)}× baseline)  index+cluster ${ms(median(large.map((x) => x.indexMs)))}  frame ${ms(median(large.map((x) => x.frameMs)))}`,
    );
    // For a look at the clusters (git-ignored, beside the e2e screenshots).
    await showPoints(page, POINTS);
    await page.screenshot({
      path: new URL('../e2e/screenshots/bench-map-20000.png', import.meta.url).pathname,
    });
    const clustered = await panFrames(page, 11, 120);
    const street = await panFrames(page, 17.5, 120);
    console.log(
      `  pan frame, ${POINTS.toLocaleString('en')} points           ${ms(clustered)} at zoom 11 (clusters), ${ms(street)} at zoom 17.5 (points one by one); 16.7 ms = 60 fps`,
    );
    await context.close();
  } finally {
    await browser.close();
    blank.close();
    await hub.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
