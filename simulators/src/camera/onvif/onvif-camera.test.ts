import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeOnvifCameras } from '../../../../device-drivers/src/onvif/discovery.ts';
import { OnvifCamera } from './onvif-camera.ts';

const USER = 'operator';
const PASSWORD = 'correct horse';

function usernameToken(password: string, options: { nonce?: Buffer; created?: string } = {}): string {
  const nonce = options.nonce ?? randomBytes(16);
  const created = options.created ?? new Date().toISOString();
  const digest = createHash('sha1')
    .update(Buffer.concat([nonce, Buffer.from(created), Buffer.from(password)]))
    .digest('base64');
  return (
    '<Security xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><UsernameToken>' +
    `<Username>${USER}</Username>` +
    `<Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">${digest}</Password>` +
    `<Nonce>${nonce.toString('base64')}</Nonce>` +
    `<Created xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">${created}</Created>` +
    '</UsernameToken></Security>'
  );
}

function soap(body: string, header = ''): string {
  return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header>${header}</s:Header><s:Body>${body}</s:Body></s:Envelope>`;
}

const DEVICE_INFO = '<GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/>';

describe('simulated ONVIF camera', () => {
  const camera = new OnvifCamera({
    username: USER,
    password: PASSWORD,
    discovery: { address: '127.0.0.1', port: 0 },
    fps: 10,
  });
  const post = async (body: string | Uint8Array, path = '/onvif/device_service') => {
    const res = await fetch(`http://127.0.0.1:${camera.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/soap+xml' },
      body,
    });
    return { status: res.status, text: await res.text() };
  };

  beforeAll(async () => {
    await Promise.all([camera.start(), camera.start()]);
  });
  afterAll(async () => {
    await camera.stop();
    await camera.stop();
  });

  it('answers GetSystemDateAndTime without credentials and everything else only with a valid UsernameToken', async () => {
    const time = await post(soap('<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/>'));
    expect(time.status).toBe(200);
    expect(time.text).toContain(`<tt:Year>${new Date().getUTCFullYear()}</tt:Year>`);

    const none = await post(soap(DEVICE_INFO));
    expect(none.status).toBe(401);
    expect(none.text).toContain('ter:NotAuthorized');

    const wrong = await post(soap(DEVICE_INFO, usernameToken('wrong')));
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('ter:NotAuthorized');

    const stale = await post(
      soap(DEVICE_INFO, usernameToken(PASSWORD, { created: new Date(Date.now() - 3_600_000).toISOString() })),
    );
    expect(stale.status).toBe(400);

    const nonce = randomBytes(16);
    const created = new Date().toISOString();
    const ok = await post(soap(DEVICE_INFO, usernameToken(PASSWORD, { nonce, created })));
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('<tds:Manufacturer>citysense</tds:Manufacturer>');

    const replay = await post(soap(DEVICE_INFO, usernameToken(PASSWORD, { nonce, created })));
    expect(replay.status).toBe(400);
    expect(replay.text).toContain('ter:NotAuthorized');
  });

  it('answers garbage HTTP bodies with SOAP faults and keeps serving', async () => {
    const garbage: Array<string | Uint8Array> = [
      '',
      'not xml at all',
      '<s:Envelope><s:Body><Unclosed></s:Body>',
      '<?xml version="1.0"?><root/>',
      soap(''),
      randomBytes(4096),
      `<!DOCTYPE x [<!ENTITY a "${'A'.repeat(1000)}">]>${soap('<X>&a;&a;&a;</X>')}`,
    ];
    for (const body of garbage) {
      const res = await post(body);
      // 400 for what is not SOAP; 401 for well-formed SOAP without credentials.
      expect([400, 401]).toContain(res.status);
      expect(res.text).toContain('s:Fault');
    }
    const unknown = await post(soap('<SelfDestruct xmlns="urn:x"/>', usernameToken(PASSWORD)));
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('ter:ActionNotSupported');
    const huge = await post('<a>'.repeat(200_000));
    expect(huge.status).toBe(400);
    const notFound = await fetch(`http://127.0.0.1:${camera.port}/index.html`);
    expect(notFound.status).toBe(404);

    const after = await post(soap('<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/>'));
    expect(after.status).toBe(200);
  });

  it('answers WS-Discovery probes, also after garbage datagrams', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const junk = [
      Buffer.alloc(0),
      randomBytes(1500),
      Buffer.from('<?xml version="1.0"?><s:Envelope><s:Body><Probe/></s:Body></s:Envelope>'),
      Buffer.from('<broken'),
    ];
    for (const j of junk)
      await new Promise<void>((resolve) =>
        socket.send(j, camera.discoveryPort, '127.0.0.1', () => resolve()),
      );
    socket.close();
    const found = await probeOnvifCameras({
      target: { host: '127.0.0.1', port: camera.discoveryPort },
      timeoutMs: 300,
    });
    expect(found).toEqual([
      expect.objectContaining({
        endpoint: camera.endpointReference,
        xaddrs: [camera.deviceServiceUrl],
        types: expect.arrayContaining(['dn:NetworkVideoTransmitter']),
      }),
    ]);
  });

  it('serves a JPEG snapshot and Profile M metadata over HTTP', async () => {
    const snap = await fetch(camera.snapshotUrl);
    expect(snap.headers.get('content-type')).toBe('image/jpeg');
    const bytes = new Uint8Array(await snap.arrayBuffer());
    expect([bytes[0], bytes[1]]).toEqual([0xff, 0xd8]);
    const meta = await (await fetch(camera.metadataUrl)).text();
    expect(meta).toContain('<tt:MetadataStream');
    expect(meta).toMatch(/<tt:Type Likelihood="0.87">Human<\/tt:Type>/);
  });

  it('reports the objects set with setAnalyticsObjects from the next metadata document on', async () => {
    camera.setAnalyticsObjects([
      {
        objectId: 3,
        classes: [{ type: 'Vehicle', likelihood: 0.5 }],
        box: { left: 0, top: 0, right: 0.5, bottom: 0.5 },
      },
    ]);
    try {
      const meta = await (await fetch(camera.metadataUrl)).text();
      expect(meta).toContain('<tt:Object ObjectId="3">');
      expect(meta).toMatch(/<tt:Type Likelihood="0.5">Vehicle<\/tt:Type>/);
      expect(meta).not.toContain('Human');
      // Signed (−1..1, y up) by default: the top-left quarter.
      expect(meta).toContain('<tt:BoundingBox left="-1" top="1" right="0" bottom="0"/>');
    } finally {
      camera.setAnalyticsObjects([
        {
          objectId: 1,
          classes: [{ type: 'Human', likelihood: 0.87 }],
          box: { left: 0.25, top: 0.2, right: 0.5, bottom: 0.9 },
        },
      ]);
    }
  });

  it('speaks RTSP: SDP with H.264 parameter sets, TCP interleaved only, 400 for garbage', async () => {
    const { port } = new URL(camera.streamUrl);
    const exchange = (request: string) =>
      new Promise<string>((resolve) => {
        const s = connect(Number(port), '127.0.0.1');
        let got = '';
        s.on('data', (d) => {
          got += d.toString('latin1');
          if (/\r\n\r\n/.test(got) && !/Content-Length: (\d+)/.test(got)) s.end();
          const length = /Content-Length: (\d+)/.exec(got)?.[1];
          if (length && got.length >= got.indexOf('\r\n\r\n') + 4 + Number(length)) s.end();
        });
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
        s.write(request);
      });
    expect(await exchange('HELLO?\r\n\r\n')).toMatch(/^RTSP\/1\.0 400/);
    const describe = await exchange(`DESCRIBE ${camera.streamUrl} RTSP/1.0\r\nCSeq: 2\r\n\r\n`);
    expect(describe).toMatch(/^RTSP\/1\.0 200 OK\r\nCSeq: 2/);
    expect(describe).toMatch(/a=rtpmap:96 H264\/90000/);
    expect(describe).toMatch(/sprop-parameter-sets=Z[A-Za-z0-9+/=]+,aM[A-Za-z0-9+/=]+/);
    const udp = await exchange(
      `SETUP ${camera.streamUrl}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n`,
    );
    expect(udp).toMatch(/^RTSP\/1\.0 461/);
    expect(await exchange(`OPTIONS * RTSP/1.0\r\nCSeq: 4\r\n\r\n`)).toMatch(/Public: OPTIONS, DESCRIBE/);
  });
});
