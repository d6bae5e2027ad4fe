import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { hasCode } from '@citysense/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { VideoAccessUnit } from './access-unit.ts';
import { RTP_RECEIVER_BIND } from './errors.ts';
import { decodeAnnexB, pseudoRandomBytes } from './media-test-fixtures.ts';
import { buildRtp } from './rtp.ts';
import { RtpReceiver, type RtpTransport } from './rtp-receiver.ts';
import { PsRtpSender } from './rtp-sender.ts';
import { frameRtpForTcp } from './rtp-tcp-framing.ts';

const SSRC = 100000001; // y=0100000001: live, domain digits 00000, sequence 0001
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startReceiver(
  transport: RtpTransport,
  extra: Partial<ConstructorParameters<typeof RtpReceiver>[0]> = {},
) {
  const receiver = new RtpReceiver({ transport, host: '127.0.0.1', ssrc: SSRC, ...extra });
  cleanups.push(() => receiver.stop());
  await receiver.start();
  return receiver;
}

function collect(receiver: RtpReceiver, count: number): Promise<VideoAccessUnit[]> {
  const units: VideoAccessUnit[] = [];
  return new Promise((resolve) => {
    receiver.on('accessUnit', (au) => {
      units.push(au);
      if (units.length === count) resolve(units);
    });
  });
}

async function send(
  transport: RtpTransport,
  port: number,
  frames: number,
  ssrc = SSRC,
): Promise<PsRtpSender> {
  const sender = new PsRtpSender({
    transport,
    host: '127.0.0.1',
    port,
    ssrc,
    frames,
    frameRate: 30,
    width: 160,
    height: 120,
  });
  cleanups.push(() => sender.stop());
  const ended = new Promise<void>((resolve, reject) => {
    sender.on('end', resolve);
    sender.on('error', reject);
  });
  await sender.start();
  await ended;
  return sender;
}

describe.each<RtpTransport>(['udp', 'tcp'])('PsRtpSender → RtpReceiver over %s', (transport) => {
  it('delivers every picture of a live ffmpeg stream, decodable by ffmpeg', async () => {
    const receiver = await startReceiver(transport);
    expect(receiver.port).toBeGreaterThan(0);
    const received = collect(receiver, 15);
    const sender = await send(transport, receiver.port, 15);
    const units = await received;
    expect(sender.stats.frames).toBe(15);
    expect(units[0]?.keyframe).toBe(true);
    expect(units.every((u, i) => u.pts90k === i * 3000)).toBe(true);
    expect(await decodeAnnexB('h264', Buffer.concat(units.map((u) => u.data)))).toEqual({
      frames: 15,
      errors: '',
    });
    expect(receiver.stats).toMatchObject({
      packets: sender.stats.packets,
      lost: 0,
      garbage: 0,
      accessUnits: 15,
    });
    expect(receiver.stats.bytes).toBe(sender.stats.bytes);
  });
});

describe('RtpReceiver with hostile input', () => {
  it('counts UDP garbage, truncated packets and foreign SSRCs, then decodes the real stream', async () => {
    const receiver = await startReceiver('udp', { idleTimeoutMs: 5000 });
    const udp = createSocket('udp4');
    cleanups.push(() => new Promise((resolve) => udp.close(() => resolve())));
    const foreign = buildRtp({
      payloadType: 96,
      sequenceNumber: 1,
      timestamp: 0,
      ssrc: 42,
      payload: Buffer.alloc(100),
    });
    const truncated = buildRtp({
      payloadType: 96,
      sequenceNumber: 9,
      timestamp: 0,
      ssrc: SSRC,
      csrcs: [1, 2, 3],
      payload: Buffer.alloc(0),
    }).subarray(0, 14);
    const datagrams = [
      pseudoRandomBytes(500, 1),
      pseudoRandomBytes(3, 2),
      Buffer.alloc(0),
      truncated,
      foreign,
      foreign,
    ];
    for (const datagram of datagrams) {
      await new Promise<void>((resolve, reject) =>
        udp.send(datagram, receiver.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
      );
    }
    const received = collect(receiver, 10);
    await send('udp', receiver.port, 10);
    const units = await received;
    expect((await decodeAnnexB('h264', Buffer.concat(units.map((u) => u.data)))).frames).toBe(10);
    // UDP on loopback keeps order, so by now the earlier datagrams have been counted.
    expect(receiver.stats).toMatchObject({ foreignSsrc: 2, accessUnits: 10 });
    expect(receiver.stats.garbage).toBeGreaterThanOrEqual(3); // the empty datagram may not be delivered
  });

  it('survives a TCP peer sending random bytes and one speaking for another SSRC', async () => {
    const receiver = await startReceiver('tcp');
    const connectionsClosed = new Promise<void>((resolve) => {
      let closed = 0;
      receiver.on('connection', (state) => {
        if (state === 'closed' && ++closed === 2) resolve();
      });
    });
    for (const bytes of [
      Buffer.concat([Buffer.from([0, 0]), pseudoRandomBytes(5000, 9)]),
      frameRtpForTcp(
        buildRtp({ payloadType: 96, sequenceNumber: 1, timestamp: 0, ssrc: 7, payload: Buffer.alloc(10) }),
      ),
    ]) {
      const socket = connect({ host: '127.0.0.1', port: receiver.port });
      socket.on('error', () => undefined);
      socket.end(bytes);
    }
    await connectionsClosed;
    expect(receiver.stats.garbage).toBeGreaterThan(0);
    expect(receiver.stats.foreignSsrc).toBe(1);
    const received = collect(receiver, 8);
    await send('tcp', receiver.port, 8);
    expect((await decodeAnnexB('h264', Buffer.concat((await received).map((u) => u.data)))).frames).toBe(8);
  });

  it('puts reordered packets back in order, counts a lost picture and resumes decodable output', async () => {
    const receiver = await startReceiver('udp', { reorderWindow: 8, reorderDelayMs: 20 });
    const udp = createSocket('udp4');
    cleanups.push(() => new Promise((resolve) => udp.close(() => resolve())));
    // Capture a real stream's packets by pointing a sender at our own socket first.
    const capture = createSocket('udp4');
    const packets: Buffer[] = [];
    capture.on('message', (msg) => packets.push(msg));
    await new Promise<void>((resolve) => capture.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => capture.close(() => resolve())));
    const sender = await send('udp', capture.address().port, 6);
    await expect.poll(() => packets.length).toBe(sender.stats.packets);
    // Group by picture (the marker bit ends one), lose picture 5, swap neighbours in the rest.
    const pictures: Buffer[][] = [[]];
    for (const packet of packets) {
      pictures[pictures.length - 1]?.push(packet);
      if (((packet[1] ?? 0) & 0x80) !== 0) pictures.push([]);
    }
    const lostPackets = pictures[4]?.length ?? 0;
    const wire = [...pictures.slice(0, 4).flat(), ...(pictures[5] ?? [])];
    for (let i = 0; i + 1 < wire.length; i += 3)
      wire.splice(i, 2, wire[i + 1] ?? Buffer.alloc(0), wire[i] ?? Buffer.alloc(0));
    const received = collect(receiver, 4);
    for (const packet of wire) {
      await new Promise<void>((resolve) => udp.send(packet, receiver.port, '127.0.0.1', () => resolve()));
    }
    const units = await received;
    expect((await decodeAnnexB('h264', Buffer.concat(units.map((u) => u.data)))).frames).toBe(4);
    // Picture 6 follows the gap and needs picture 5: it is held back until the next keyframe.
    await expect.poll(() => receiver.stats.demux.droppedAccessUnits).toBe(1);
    expect(receiver.stats).toMatchObject({ lost: lostPackets, late: 0, accessUnits: 4 });
  });

  it("emits 'timeout' when the camera goes silent, and stops cleanly twice", async () => {
    const receiver = await startReceiver('udp', { idleTimeoutMs: 150 });
    const timedOut = new Promise<number>((resolve) => receiver.on('timeout', resolve));
    const idleMs = await timedOut;
    expect(idleMs).toBeGreaterThanOrEqual(150);
    await receiver.start();
    await receiver.stop();
    await receiver.stop();
    const iterator = receiver.accessUnits();
    expect((await iterator.next()).done).toBe(true);
  });

  it('rejects start with CS_ERR_RTP_RECEIVER_BIND when the port is taken', async () => {
    const first = await startReceiver('tcp');
    const second = new RtpReceiver({ transport: 'tcp', host: '127.0.0.1', port: first.port });
    const err = await second.start().catch((e: unknown) => e);
    expect(hasCode(err, RTP_RECEIVER_BIND)).toBe(true);
    await second.stop();
  });

  it('yields access units to for-await consumers', async () => {
    const receiver = await startReceiver('tcp');
    const iterator = receiver.accessUnits();
    const sending = send('tcp', receiver.port, 4);
    const keyframes: boolean[] = [];
    for await (const au of iterator) {
      keyframes.push(au.keyframe);
      if (keyframes.length === 4) break;
    }
    await sending;
    expect(keyframes).toEqual([true, false, false, false]);
  });
});
