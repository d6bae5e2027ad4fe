import { createServer } from 'node:net';
import { hasCode } from '@citysense/protocol';
import { describe, expect, it } from 'vitest';
import { RTP_SENDER_FAILED } from './errors.ts';
import { RtpReceiver } from './rtp-receiver.ts';
import { PsRtpSender } from './rtp-sender.ts';

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

describe('PsRtpSender', () => {
  it('streams until stopped; the receiver then reports the camera gone and keeps running', async () => {
    const receiver = new RtpReceiver({
      transport: 'tcp',
      host: '127.0.0.1',
      ssrc: 200000002,
      idleTimeoutMs: 200,
    });
    await receiver.start();
    const sender = new PsRtpSender({
      transport: 'tcp',
      host: '127.0.0.1',
      port: receiver.port,
      ssrc: 200000002,
    });
    try {
      const threePictures = new Promise<void>((resolve) => {
        let n = 0;
        receiver.on('accessUnit', () => {
          if (++n === 3) resolve();
        });
      });
      receiver.on('accessUnit', () => {
        throw new Error('a broken consumer must not stop the stream');
      });
      await sender.start();
      await threePictures;
      const timedOut = new Promise<void>((resolve) => receiver.on('timeout', () => resolve()));
      await sender.stop();
      await sender.stop();
      const sent = sender.stats.frames;
      await timedOut;
      expect(sender.stats.frames).toBe(sent);
      expect(receiver.stats.accessUnits).toBeGreaterThanOrEqual(3);
      expect(receiver.stats.garbage).toBe(0);
    } finally {
      await sender.stop();
      await receiver.stop();
    }
  });

  it('rejects start with CS_ERR_RTP_SENDER_FAILED when nobody listens on the TCP port', async () => {
    const sender = new PsRtpSender({
      transport: 'tcp',
      host: '127.0.0.1',
      port: await closedPort(),
      ssrc: 1,
    });
    const err = await sender.start().catch((e: unknown) => e);
    expect(hasCode(err, RTP_SENDER_FAILED)).toBe(true);
    await sender.stop();
  });

  it('rejects start with CS_ERR_RTP_SENDER_FAILED when ffmpeg is missing', async () => {
    const sender = new PsRtpSender({
      transport: 'udp',
      host: '127.0.0.1',
      port: 9,
      ssrc: 1,
      ffmpegPath: '/nonexistent/ffmpeg',
    });
    const err = await sender.start().catch((e: unknown) => e);
    expect(hasCode(err, RTP_SENDER_FAILED)).toBe(true);
    await sender.stop();
  });
});
