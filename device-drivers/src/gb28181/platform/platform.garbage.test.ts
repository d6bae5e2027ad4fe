/** Bad input at the GB/T 28181 platform: every kind is answered or counted, and other devices keep being served. */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Gb28181Camera } from '../../../../simulators/src/camera/gb28181/gb28181-camera.ts';
import { SipEndpoint } from '../sip/endpoint.ts';
import { Gb28181Platform } from './platform.ts';

const SERVER_ID = '34020000002000000001';
const CAMERA = '34020000001320000001';

function message(o: { method?: string; from?: string; body: Buffer; contentType?: string }): Buffer {
  const method = o.method ?? 'MESSAGE';
  const head = [
    `${method} sip:${SERVER_ID}@3402000000 SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK${Math.random().toString(36).slice(2)}`,
    `From: <sip:${o.from ?? CAMERA}@3402000000>;tag=x1`,
    `To: <sip:${SERVER_ID}@3402000000>`,
    `Call-ID: ${Math.random().toString(36).slice(2)}`,
    `CSeq: 7 ${method}`,
    `Content-Type: ${o.contentType ?? 'Application/MANSCDP+xml'}`,
    `Content-Length: ${o.body.length}`,
    '',
    '',
  ].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), o.body]);
}

async function ask(socket: Socket, port: number, bytes: Buffer): Promise<string> {
  const answer = once(socket, 'message');
  socket.send(bytes, port, '127.0.0.1');
  const [raw] = (await answer) as [Buffer];
  return raw.toString('latin1').split('\r\n')[0] ?? '';
}

describe('GB/T 28181 platform under bad input', () => {
  const stops: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  it('answers garbage with SIP errors or counts it, and keeps serving a well-behaved camera', async () => {
    const platform = new Gb28181Platform({
      endpoint: new SipEndpoint(),
      serverId: SERVER_ID,
      passwordOf: (id) => (id === CAMERA ? 'secret' : undefined),
      queryTimeoutMs: 5000,
    });
    await platform.start();
    stops.push(() => platform.stop());
    const camera = new Gb28181Camera({
      deviceId: CAMERA,
      password: 'secret',
      server: { id: SERVER_ID, host: '127.0.0.1', port: platform.port },
      keepaliveIntervalMs: 200,
    });
    await camera.start();
    stops.push(() => camera.stop());

    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    stops.push(() => {
      socket.close();
    });
    const port = platform.port;

    // Broken XML, an undeclared DOCTYPE entity, bytes that are not GB2312, a body that is not MANSCDP.
    expect(
      await ask(socket, port, message({ body: Buffer.from('<?xml version="1.0"?><Notify><CmdType>Keep') })),
    ).toBe('SIP/2.0 400 Bad Request');
    const entity =
      '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Notify><CmdType>&a;</CmdType></Notify>';
    expect(await ask(socket, port, message({ body: Buffer.from(entity) }))).toBe('SIP/2.0 400 Bad Request');
    const badGb2312 = Buffer.concat([
      Buffer.from(
        '<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>',
      ),
      Buffer.from([0xff, 0xff, 0xff]),
      Buffer.from('</DeviceID></Notify>'),
    ]);
    expect(await ask(socket, port, message({ body: badGb2312 }))).toBe('SIP/2.0 400 Bad Request');
    expect(
      await ask(socket, port, message({ body: Buffer.from('{}'), contentType: 'application/json' })),
    ).toBe('SIP/2.0 415 Unsupported Media Type');
    // A keepalive from a device that never registered, an unknown method, a malformed request line.
    const stranger = Buffer.from(
      '<?xml version="1.0"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>34020000001320000999</DeviceID></Notify>',
    );
    expect(await ask(socket, port, message({ from: '34020000001320000999', body: stranger }))).toBe(
      'SIP/2.0 403 Forbidden',
    );
    expect(await ask(socket, port, message({ method: 'FOO', body: Buffer.alloc(0) }))).toBe(
      'SIP/2.0 405 Method Not Allowed',
    );
    expect(await ask(socket, port, message({ body: Buffer.from('x') }).subarray(1))).toMatch(
      /^SIP\/2\.0 400 /,
    );
    // Datagrams that are no SIP at all get no answer, only a count.
    for (const junk of [
      Buffer.from([0x16, 0x03, 0x01, 0x00]),
      Buffer.alloc(2000, 0x41),
      Buffer.from('\r\n\r\n'),
    ])
      socket.send(junk, port, '127.0.0.1');

    // A stream that cannot be framed (no Content-Length, 70 KB head) is dropped; others stay up.
    const tcp = connect(port, '127.0.0.1');
    // The platform resets the connection; the reset is the expected outcome, not a failure.
    tcp.on('error', () => undefined);
    const closed = new Promise((resolve) => tcp.once('close', resolve));
    await once(tcp, 'connect');
    tcp.write(`MESSAGE sip:x SIP/2.0\r\n${'X-Junk: y\r\n'.repeat(7000)}`);
    await closed;

    // The camera is still served: keepalives land and a Catalog query is answered.
    const before = platform.stats().keepalives;
    await once(platform, 'keepalive');
    expect(platform.stats().keepalives).toBeGreaterThan(before);
    expect(await platform.queryCatalog(CAMERA)).toHaveLength(1);
    const stats = platform.stats();
    expect(stats.sip.malformed).toBeGreaterThanOrEqual(3);
    expect(stats.refused).toMatchObject({
      CS_ERR_MANSCDP_INVALID: 3,
      CS_ERR_GB_CONTENT_TYPE: 1,
      CS_ERR_GB_NOT_REGISTERED: 1,
      CS_ERR_SIP_METHOD: 1,
    });
  });
});
