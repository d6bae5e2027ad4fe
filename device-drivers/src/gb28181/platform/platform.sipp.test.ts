/** The platform against real sipp devices (Debian sip-tester): the register, keepalive and Catalog flows. */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { SipEndpoint } from '../sip/endpoint.ts';
import { runSipp, shouldSkipSipp, sippSuiteTitle, startSipp } from '../sipp/sipp-runner.ts';
import { type DeviceStatusChange, Gb28181Platform } from './platform.ts';

const SERVER_ID = '34020000002000000001';
const DOMAIN = '3402000000';
const DEVICE = '34020000001320000001';
const PASSWORD = '12345678';

describe.skipIf(shouldSkipSipp())(sippSuiteTitle('GB/T 28181 platform with sipp devices'), () => {
  const platforms: Gb28181Platform[] = [];
  afterEach(async () => {
    await Promise.all(platforms.splice(0).map((p) => p.stop()));
  });

  async function platform(
    transport: 'udp' | 'tcp' = 'udp',
    queryTimeoutMs = 10_000,
  ): Promise<Gb28181Platform> {
    const p = new Gb28181Platform({
      endpoint: new SipEndpoint({ protocols: [transport] }),
      serverId: SERVER_ID,
      queryTimeoutMs,
      passwordOf: (id) => (id.startsWith('3402000000132') ? PASSWORD : undefined),
    });
    platforms.push(p);
    await p.start();
    return p;
  }

  const server = (p: Gb28181Platform) => ({ host: '127.0.0.1', port: p.port, id: SERVER_ID, domain: DOMAIN });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`registers with the right password, takes a keepalive and unregisters (${transport})`, async () => {
      const p = await platform(transport);
      const changes: DeviceStatusChange[] = [];
      p.on('status', (c) => changes.push(c));
      let keepalives = 0;
      p.on('keepalive', () => keepalives++);
      const result = await runSipp({
        scenario: 'register',
        server: server(p),
        devices: [{ deviceId: DEVICE, password: PASSWORD }],
        transport,
      });
      expect(result.errors, result.output).toBe('');
      expect(result.exitCode, result.output).toBe(0);
      expect(keepalives).toBe(1);
      expect(changes.map((c) => [c.online, c.reason])).toEqual([
        [true, 'registered'],
        [false, 'unregistered'],
      ]);
      expect(p.sessions()).toEqual([]);
    });
  }

  it('answers a wrong password with 403 and counts it', async () => {
    const p = await platform();
    const result = await runSipp({
      scenario: 'register-wrong-password',
      server: server(p),
      devices: [{ deviceId: DEVICE, password: 'not-the-password' }],
    });
    expect(result.exitCode, result.output + result.errors).toBe(0);
    expect(p.stats().refused).toEqual({ CS_ERR_GB_REGISTER_WRONG_PASSWORD: 1 });
    expect(p.sessions()).toEqual([]);
  });

  it('answers a REGISTER without Expires with 400', async () => {
    const p = await platform();
    const result = await runSipp({
      scenario: 'register-no-expires',
      server: server(p),
      devices: [{ deviceId: DEVICE, password: PASSWORD }],
    });
    expect(result.exitCode, result.output + result.errors).toBe(0);
    expect(p.stats().refused).toEqual({ CS_ERR_GB_REGISTER_NO_EXPIRES: 1 });
  });

  it('refuses a device that is not in the ledger', async () => {
    const p = await platform();
    const result = await runSipp({
      scenario: 'register-wrong-password',
      server: server(p),
      devices: [{ deviceId: '34020000001110000009', password: PASSWORD }],
      timeoutS: 5,
    });
    // The scenario expects 401 first; an unknown device gets 403 at once, which sipp reports as unexpected.
    expect(result.exitCode).not.toBe(0);
    expect(result.errors).toMatch(/403/);
    expect(p.stats().refused).toEqual({ CS_ERR_GB_REGISTER_UNKNOWN_DEVICE: 1 });
  });

  it('collects a paged Catalog answer by SN', async () => {
    const p = await platform();
    // The channels catalog-answer.xml answers with.
    const channels = ['34020000001320000101', '34020000001320000102'];
    const registered = once(p, 'registered');
    const sipp = await startSipp({
      scenario: 'register-and-stay',
      outOfCall: 'catalog-answer',
      server: server(p),
      devices: [{ deviceId: DEVICE, password: PASSWORD }],
      timeoutS: 40,
    });
    try {
      await Promise.race([registered, sipp.done.then((r) => Promise.reject(new Error(r.output + r.errors)))]);
      const items = await p.queryCatalog(DEVICE);
      expect(items.map((i) => [i.deviceId, i.name, i.status])).toEqual([
        [channels[0], 'Renmin Rd east', 'ON'],
        [channels[1], 'Renmin Rd west', 'OFF'],
      ]);
      expect(items[0]?.longitude).toBeCloseTo(117.2272, 4);
      expect(p.stats().pendingQueries).toBe(0);
    } finally {
      sipp.child.kill('SIGKILL');
      await sipp.done;
    }
  });

  it('times a query out with a code when the device never answers, while its MESSAGE is still retransmitted', async () => {
    const p = await platform('udp', 300);
    const registered = once(p, 'registered');
    // No out-of-call scenario: sipp drops the query MESSAGE, as a hung device would.
    const sipp = await startSipp({
      scenario: 'register-and-stay',
      server: server(p),
      devices: [{ deviceId: DEVICE, password: PASSWORD }],
      timeoutS: 40,
    });
    try {
      await registered;
      await expect(p.queryDeviceInfo(DEVICE)).rejects.toMatchObject({ code: 'CS_ERR_GB_QUERY_TIMEOUT' });
      expect(p.stats().pendingQueries).toBe(0);
    } finally {
      sipp.child.kill('SIGKILL');
      await sipp.done;
    }
  });
});
