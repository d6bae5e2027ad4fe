import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, Socket } from 'node:net';
import { hasCode } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RTMP_PORT_IN_USE, RTMP_PUBLISH_REFUSED, RTMP_STREAM_NAME } from './errors.ts';
import { MediaRelayServer, type PublishInfo, type RefusedPublish } from './media-server.ts';
import { type FfmpegRun, kill, publishTestPattern, readFrames } from './test-support.ts';

const SECRET = 'pole-17-secret';

/** Sends `data` to host:port and resolves when the peer closes or after it answers. */
async function sendRaw(port: number, data: Buffer): Promise<void> {
  const socket = new Socket();
  socket.on('error', () => undefined); // the relay may reset us; that is the point
  socket.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(data);
  socket.end();
  socket.resume();
  await once(socket, 'close');
}

/** One RTMP command message (AMF0, type 20) on chunk stream 3, in a single type-0 chunk. */
function amfCommand(values: (string | number | Record<string, string>)[]): Buffer {
  const parts: Buffer[] = [];
  const str = (v: string): Buffer => {
    const b = Buffer.alloc(2 + Buffer.byteLength(v));
    b.writeUInt16BE(Buffer.byteLength(v));
    b.write(v, 2);
    return b;
  };
  for (const v of values) {
    if (typeof v === 'string') parts.push(Buffer.from([2]), str(v));
    else if (typeof v === 'number') {
      const n = Buffer.alloc(9);
      n[0] = 0;
      n.writeDoubleBE(v, 1);
      parts.push(n);
    } else {
      parts.push(Buffer.from([3]));
      for (const [k, x] of Object.entries(v)) parts.push(str(k), Buffer.from([2]), str(x));
      parts.push(Buffer.from([0, 0, 9]));
    }
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(12);
  header[0] = 3;
  header.writeUIntBE(body.length, 4, 3);
  header[7] = 20;
  return Buffer.concat([header, body]);
}

describe('MediaRelayServer', () => {
  const relay = new MediaRelayServer({ publishSecret: SECRET });
  let camera: FfmpegRun | undefined;

  beforeAll(async () => {
    await relay.start();
    const published = once(relay, 'publish') as Promise<[PublishInfo]>;
    camera = await publishTestPattern(relay.rtmpUrl('live', 'cam1', { publish: true }));
    const [info] = await published;
    expect(info).toMatchObject({ app: 'live', stream: 'cam1', path: 'live/cam1', protocol: 'rtmp' });
  });

  afterAll(async () => {
    await kill(camera);
    await relay.stop();
  });

  it('plays the stream back over RTMP and HTTP-FLV at once', async () => {
    const [rtmp, flv] = await Promise.all([
      readFrames(relay.rtmpUrl('live', 'cam1'), 3),
      readFrames(relay.flvUrl('live', 'cam1'), 3),
    ]);
    for (const frames of [rtmp, flv]) {
      expect(frames).toHaveLength(3);
      expect(frames[0]?.image).toMatchObject({ width: 320, height: 240 });
    }
  });

  it('lists the published stream with its publisher and video', () => {
    const [stream] = relay.streams();
    expect(stream).toMatchObject({
      path: 'live/cam1',
      protocol: 'rtmp',
      remoteAddress: '127.0.0.1',
      status: 'publishing',
      video: { width: 320, height: 240 },
    });
    expect(stream?.bytesIn).toBeGreaterThan(0);
  });

  it('refuses publishers without the right token', async () => {
    const refusals: RefusedPublish[] = [];
    relay.on('publishRefused', (r) => refusals.push(r));
    const wrong = relay.rtmpUrl('live', 'intruder').concat('?token=guess');
    const intruders = await Promise.all([
      publishTestPattern(wrong),
      publishTestPattern(relay.rtmpUrl('live', 'nokey')),
    ]);
    const codes = await Promise.all(intruders.map((r) => r.exited));
    expect(codes.every((c) => c !== 0)).toBe(true);
    expect(refusals.map((r) => r.stream).sort()).toEqual(['intruder', 'nokey']);
    expect(refusals[0]?.code).toBe(RTMP_PUBLISH_REFUSED);
    expect(relay.streams().map((s) => s.path)).toEqual(['live/cam1']);
  });

  it('survives garbage on both ports while other streams keep flowing', async () => {
    const handshake = Buffer.concat([Buffer.from([3]), randomBytes(1536), randomBytes(1536)]);
    await sendRaw(relay.rtmpPort, randomBytes(8192));
    await sendRaw(relay.rtmpPort, Buffer.concat([handshake, randomBytes(8192)]));
    // A valid handshake then chunks that are almost an AMF connect: type 20, bad body.
    const chunk = Buffer.from('030000000000401400000000', 'hex');
    await sendRaw(relay.rtmpPort, Buffer.concat([handshake, chunk, randomBytes(64)]));
    // A well-formed `connect` without tcUrl: NMS's parser throws on it (uncaught, unguarded).
    await sendRaw(relay.rtmpPort, Buffer.concat([handshake, amfCommand(['connect', 1, { app: 'live' }])]));
    await sendRaw(relay.httpPort, randomBytes(4096));
    await sendRaw(relay.httpPort, Buffer.from('GET /../../etc/passwd.flv HTTP/1.1\r\nHost: x\r\n\r\n'));
    await sendRaw(
      relay.httpPort,
      Buffer.concat([
        Buffer.from('POST /live/evil.flv HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n'),
        randomBytes(4096),
      ]),
    );
    const frames = await readFrames(relay.rtmpUrl('live', 'cam1'), 2);
    expect(frames).toHaveLength(2);
    expect(relay.running).toBe(true);
    expect(relay.streams().map((s) => s.path)).toEqual(['live/cam1']);
  });

  it('rejects stream names NMS cannot route', () => {
    expect(() => relay.flvUrl('live', '../cam1')).toThrow(
      expect.objectContaining({ code: RTMP_STREAM_NAME }),
    );
  });
});

describe('MediaRelayServer lifecycle', () => {
  it('stop() ends publishes and frees both ports for a new server; relays do not share streams', async () => {
    const first = new MediaRelayServer({ allowedStreams: ['live/gate'] });
    const bystander = new MediaRelayServer();
    await Promise.all([first.start(), bystander.start()]);
    await first.start(); // idempotent
    const { rtmpPort, httpPort } = first;
    const heardByBystander: PublishInfo[] = [];
    bystander.on('publish', (info) => heardByBystander.push(info));
    const published = once(first, 'publish');
    const camera = await publishTestPattern(first.rtmpUrl('live', 'gate'));
    await published;
    // node-media-server keeps its state in module singletons; each relay loads its own copy.
    expect(bystander.streams()).toEqual([]);
    expect(heardByBystander).toEqual([]);
    await bystander.stop();
    const unpublished = once(first, 'unpublish') as Promise<[PublishInfo]>;
    await first.stop();
    await first.stop(); // idempotent
    expect((await unpublished)[0].path).toBe('live/gate');
    expect(first.running).toBe(false);
    expect(await camera.exited).not.toBe(0);

    const second = new MediaRelayServer({ rtmpPort, httpPort });
    await second.start();
    expect([second.rtmpPort, second.httpPort]).toEqual([rtmpPort, httpPort]);
    await second.stop();
  });

  it('reports a taken port as a coded error instead of exiting the process', async () => {
    const squatter: Server = createServer();
    squatter.listen(0, '127.0.0.1');
    await once(squatter, 'listening');
    const port = (squatter.address() as { port: number }).port;
    const relay = new MediaRelayServer({ rtmpPort: port });
    await expect(relay.start()).rejects.toSatisfy((err: unknown) => hasCode(err, RTMP_PORT_IN_USE));
    expect(relay.running).toBe(false);
    squatter.close();
    await once(squatter, 'close');
  });
});
