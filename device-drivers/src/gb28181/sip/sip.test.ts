import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { authorizationHeader, DigestAuthenticator, digestResponse, parseDigestChallenge } from './digest.ts';
import { SipEndpoint } from './endpoint.ts';
import { header, parseSipMessage, SIP_MALFORMED, type SipRequest, serializeSipMessage } from './message.ts';
import { SipStreamFramer } from './stream-framer.ts';
import type { SipPeer } from './transport.ts';

const REGISTER = [
  'REGISTER sip:34020000002000000001@3402000000 SIP/2.0',
  'Via: SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bK1',
  'f: <sip:34020000001320000001@3402000000>;tag=a',
  'To: <sip:34020000001320000001@3402000000>',
  'i: call-1',
  'CSeq: 1 REGISTER',
  'Expires: 3600',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

describe('SIP message codec', () => {
  it('parses compact headers and round-trips', () => {
    const m = parseSipMessage(Buffer.from(REGISTER));
    expect(m.kind).toBe('request');
    expect(header(m, 'from')).toContain('tag=a');
    expect(header(m, 'Call-ID')).toBe('call-1');
    const again = parseSipMessage(serializeSipMessage(m));
    expect(again).toEqual(m);
  });

  it('refuses garbage, missing headers, a CSeq of another method and a short body with a code', () => {
    const bad = [
      'hello',
      '\x00\x01\x02\r\n\r\n',
      REGISTER.replace('CSeq: 1 REGISTER', 'CSeq: 1 INVITE'),
      REGISTER.replace('i: call-1\r\n', ''),
      REGISTER.replace('Content-Length: 0', 'Content-Length: 50'),
      REGISTER.replace('Expires', 'Exp ires'),
    ];
    for (const text of bad)
      expect(() => parseSipMessage(Buffer.from(text))).toThrow(
        expect.objectContaining({ code: SIP_MALFORMED }),
      );
    expect(() => parseSipMessage(Buffer.alloc(70_000, 65))).toThrow(
      expect.objectContaining({ sipStatus: 513 }),
    );
  });

  it('frames messages split and glued on a stream', () => {
    const one = Buffer.from(`${REGISTER.replace('Content-Length: 0', 'Content-Length: 3')}abc`);
    const framer = new SipStreamFramer();
    const both = Buffer.concat([one, Buffer.from('\r\n'), one]);
    const out = [
      ...framer.push(both.subarray(0, 10)),
      ...framer.push(both.subarray(10, 200)),
      ...framer.push(both.subarray(200)),
    ];
    expect(out).toHaveLength(2);
    expect(parseSipMessage(out[1] as Buffer).body.toString()).toBe('abc');
  });
});

describe('SIP digest', () => {
  it('matches the RFC 2617 §3.5 example', () => {
    const response = digestResponse({
      username: 'Mufasa',
      realm: 'testrealm@host.com',
      password: 'Circle Of Life',
      method: 'GET',
      uri: '/dir/index.html',
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      qop: 'auth',
      nc: '00000001',
      cnonce: '0a4f113b',
    });
    expect(response).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('accepts the right password, refuses a wrong one and a forged nonce', () => {
    const auth = new DigestAuthenticator('3402000000');
    const challenge = parseDigestChallenge(auth.challenge());
    if (!challenge) throw new Error('no challenge');
    const answer = (password: string) =>
      authorizationHeader(challenge, {
        username: 'dev',
        password,
        method: 'REGISTER',
        uri: 'sip:x@y',
        nc: 1,
      });
    const lookup = (u: string) => (u === 'dev' ? 'secret' : undefined);
    expect(auth.verify(answer('secret'), 'REGISTER', lookup)).toEqual({ ok: true, username: 'dev' });
    expect(auth.verify(answer('nope'), 'REGISTER', lookup)).toEqual({ ok: false, reason: 'wrong' });
    expect(
      auth.verify(
        answer('secret').replace(/nonce="[0-9a-f]+"/, `nonce="${'0'.repeat(56)}"`),
        'REGISTER',
        lookup,
      ),
    ).toEqual({
      ok: false,
      reason: 'stale',
    });
    expect(auth.verify(undefined, 'REGISTER', lookup)).toEqual({ ok: false, reason: 'missing' });
  });
});

describe('SIP endpoint', () => {
  const endpoints: SipEndpoint[] = [];
  afterEach(async () => {
    await Promise.all(endpoints.splice(0).map((e) => e.stop()));
  });

  async function pair(): Promise<[SipEndpoint, SipEndpoint]> {
    const a = new SipEndpoint({ t1Ms: 20 });
    const b = new SipEndpoint({ t1Ms: 20 });
    endpoints.push(a, b);
    await Promise.all([a.start(), b.start()]);
    return [a, b];
  }

  for (const transport of ['udp', 'tcp'] as const) {
    it(`runs a transaction over ${transport}`, async () => {
      const [a, b] = await pair();
      b.on('request', (req, peer) => void b.respond(req, peer, 200, { body: Buffer.from('pong') }));
      const peer: SipPeer = { transport, address: '127.0.0.1', port: b.port };
      const response = await a.request({
        method: 'MESSAGE',
        uri: `sip:x@127.0.0.1:${b.port}`,
        peer,
        from: '<sip:a@3402000000>',
        to: '<sip:b@3402000000>',
        body: Buffer.from('ping'),
      });
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('pong');
      expect(header(response, 'to')).toMatch(/tag=/);
    });
  }

  it('retransmits over UDP until answered, and absorbs the retransmissions', async () => {
    const [a, b] = await pair();
    const seen: SipRequest[] = [];
    b.on('request', (req, peer) => {
      seen.push(req);
      // Answer late: a's Timer E fires a few times first.
      setTimeout(() => void b.respond(req, peer, 200), 100);
    });
    const response = await a.request({
      method: 'MESSAGE',
      uri: 'sip:x@y',
      peer: { transport: 'udp', address: '127.0.0.1', port: b.port },
      from: '<sip:a@y>',
      to: '<sip:b@y>',
    });
    expect(response.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(b.stats().retransmissionsAbsorbed).toBeGreaterThan(0);
  });

  it('times out with a code when nobody answers', async () => {
    const [a] = await pair();
    const silent = createSocket('udp4');
    silent.bind(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      await expect(
        a.request({
          method: 'OPTIONS',
          uri: 'sip:x@y',
          peer: { transport: 'udp', address: '127.0.0.1', port: silent.address().port },
          from: '<sip:a@y>',
          to: '<sip:b@y>',
          timeoutMs: 150,
        }),
      ).rejects.toMatchObject({ code: 'CS_ERR_SIP_TIMEOUT' });
    } finally {
      silent.close();
    }
  });

  it('answers a malformed request with 400 and keeps serving', async () => {
    const [a, b] = await pair();
    b.on('request', (req, peer) => void b.respond(req, peer, 200));
    const client = createSocket('udp4');
    client.bind(0, '127.0.0.1');
    await once(client, 'listening');
    const bad = REGISTER.replace('CSeq: 1 REGISTER', 'CSeq: 1 INVITE');
    const answered = once(client, 'message');
    client.send(Buffer.from(bad), b.port, '127.0.0.1');
    client.send(Buffer.from('\x16\x03\x01garbage'), b.port, '127.0.0.1');
    const [raw] = (await answered) as [Buffer];
    expect(raw.toString()).toMatch(/^SIP\/2\.0 400 /);
    client.close();
    const ok = await a.request({
      method: 'OPTIONS',
      uri: 'sip:x@y',
      peer: { transport: 'udp', address: '127.0.0.1', port: b.port },
      from: '<sip:a@y>',
      to: '<sip:b@y>',
    });
    expect(ok.status).toBe(200);
    expect(b.stats().malformed).toBe(2);
  });
});
