import {
  DataType,
  encodePayload,
  encodeVideoAnalyticsFrame,
  SPOOL_ID,
  VIDEO_ANALYTICS_METRIC,
} from '@citysense/protocol';
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { connectNode } from '../../cloud-hub/src/testing/node-client.ts';
import { type FfmpegRun, kill, publishTestPattern } from '../../device-drivers/src/rtmp/test-support.ts';
import {
  chromiumSuiteTitle,
  createUser,
  E2E_TIMEOUT,
  login,
  shoot,
  shouldSkipChromium,
  useConsoleHub,
} from './harness.ts';

const VIDEO_USER = { username: 'field', password: 'console-test-password-4', displayName: '现场工程师' };

describe.skipIf(shouldSkipChromium())(chromiumSuiteTitle('video user in Chromium'), () => {
  let camera: FfmpegRun | undefined;
  let node: MqttClient | undefined;
  let frames: NodeJS.Timeout | undefined;

  const con = useConsoleHub({
    async setup({ hub: { t } }) {
      await createUser(t, VIDEO_USER, 'bdb', [{ role: 'field-engineer' }]);
      camera = await publishTestPattern(t.hub.video.relay.rtmpUrl('live', 'cam-east', { publish: true }));
      // An edge node analyses cam-east and sends a frame with a person and a car every 500 ms.
      const creds = await t.enroll('cam-node');
      node = await connectNode(creds.mqttUrl, creds.nodeId, creds.password);
      const topic = (type: string, device?: string) =>
        `spBv1.0/${creds.groupId}/${type}/${creds.nodeId}${device ? `/${device}` : ''}`;
      let seq = 0;
      const publish = (
        type: string,
        device: string | undefined,
        metrics: Parameters<typeof encodePayload>[0]['metrics'],
      ) =>
        node?.publishAsync(
          topic(type, device),
          Buffer.from(encodePayload({ seq: seq++ % 256, timestamp: Date.now(), metrics })),
        );
      await publish('NBIRTH', undefined, [
        { name: 'bdSeq', datatype: DataType.UInt64, value: 0 },
        { name: SPOOL_ID, alias: 1, datatype: DataType.UInt64, value: null },
      ]);
      await publish('DBIRTH', 'cam-east', [
        { name: VIDEO_ANALYTICS_METRIC, alias: 10, datatype: DataType.Bytes, value: null },
        { name: SPOOL_ID, alias: 1, datatype: DataType.UInt64, value: null },
      ]);
      let spool = 0;
      const sendFrame = () => {
        const now = Date.now();
        spool += 1;
        void publish('DDATA', 'cam-east', [
          {
            alias: 10,
            timestamp: now,
            datatype: DataType.Bytes,
            value: encodeVideoAnalyticsFrame({
              utcTimeMs: now,
              source: 'cam-east',
              algorithmId: 'yolox-nano',
              algorithmVersion: '1.0.0',
              frameWidth: 320,
              frameHeight: 240,
              inferMs: 20,
              objects: [
                {
                  label: 'person',
                  likelihood: 0.9,
                  classId: 0,
                  objectId: 1,
                  box: { left: 0.1, top: 0.2, right: 0.3, bottom: 0.8 },
                },
                {
                  label: 'car',
                  likelihood: 0.8,
                  classId: 2,
                  objectId: 2,
                  box: { left: 0.5, top: 0.5, right: 0.9, bottom: 0.9 },
                },
              ],
            }),
          },
          { alias: 1, datatype: DataType.UInt64, value: spool },
        ]);
      };
      sendFrame();
      frames = setInterval(sendFrame, 500);
    },
    async teardown() {
      clearInterval(frames);
      await node?.endAsync();
      if (camera) await kill(camera);
    },
  });

  it(
    'shows cameras by access path, plays a relayed stream with the detection overlay, and detections by class',
    async () => {
      const page = await con.browser.newPage(1280, 800);
      const seen: string[] = [];
      page.on('requestfailed', (r) => seen.push(`failed ${r.url()} ${r.failure()?.errorText}`));
      page.on('console', (msg) => seen.push(`console ${msg.text()}`));
      await login(page, con.hub.url, VIDEO_USER);
      await page.locator('nav a[data-page=video]').click();
      await page.locator('#video-title').waitFor();
      for (const access of ['gb28181', 'relay', 'onvif'])
        expect(await page.locator(`[data-access=${access}]`).count()).toBe(1);
      await page.locator('[data-access=gb28181] .state-empty').waitFor();
      const watch = page.locator('button[data-watch="live/cam-east"]');
      await watch.waitFor();
      expect(await page.locator('[data-access=relay] tbody').textContent()).toContain('RTMP');
      await watch.click();
      const live = page.locator('[data-testid=live-view]');
      await live.waitFor();
      expect(await live.locator('canvas.video-overlay').count()).toBe(1);
      type Browser = {
        MediaSource?: { isTypeSupported(type: string): boolean };
        document: { querySelector(s: string): { currentTime: number } | null };
      };
      const h264 = await page.evaluate(
        () =>
          (globalThis as unknown as Browser).MediaSource?.isTypeSupported(
            'video/mp4; codecs="avc1.42E01E"',
          ) ?? false,
      );
      if (h264) {
        await page
          .locator('[data-testid=live-view][data-phase=playing]')
          .waitFor({ timeout: 30_000 })
          .catch(async (e: unknown) => {
            await shoot(page, 'video-failed-1280');
            throw new Error(`${String(e)}\n${await live.textContent()}\n${seen.join('\n')}`);
          });
        const first = await page
          .locator('video')
          .evaluate((v) => (v as unknown as { currentTime: number }).currentTime);
        await page.waitForFunction(
          (t0) =>
            ((globalThis as unknown as Browser).document.querySelector('video')?.currentTime ?? 0) > t0 + 0.5,
          first,
          { timeout: 30_000 },
        );
      } else {
        // Debian's Chromium may lack proprietary codecs: the page must say so, not show a black box.
        await page.locator('[data-testid=codec-unsupported]').waitFor();
      }
      await page.locator('[data-testid=overlay-count]', { hasText: '2 个目标' }).waitFor({ timeout: 30_000 });
      await page.locator('[data-testid=detections] tbody tr', { hasText: 'person' }).waitFor();
      expect(await page.locator('[data-testid=detections] tbody').textContent()).toContain('car');
      await shoot(page, 'video-1280');
      await page.setViewportSize({ width: 834, height: 1112 });
      await shoot(page, 'video-834');
      await page.close();
    },
    E2E_TIMEOUT,
  );
});
