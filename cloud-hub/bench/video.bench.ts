/**
 * Video access benchmark (`npm run bench:video`), against real sipp devices:
 *  1. REGISTER with digest per second held by the GB/T 28181 platform, against the bare
 *     SIP stack answering the same exchange without registrar work (baseline, same run);
 *  2. keepalives per second, same comparison;
 *  3. how many cameras on a 1-minute keepalive one `citysense hub` process holds, and its
 *     RSS once they are all online and a full keepalive round has passed (target < 1 GiB).
 *
 *   BENCH_DEVICES=5000 BENCH_CAMERAS=10000 npm run bench:video
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Gb28181Platform, gbDate, SipEndpoint, sip } from '@citysense/device-drivers';
import { kill9, spawnCli } from '../../cli/e2e/processes.ts';
import {
  runSipp,
  type SippDevice,
  type SippScenario,
  startSipp,
} from '../../device-drivers/src/gb28181/sipp/sipp-runner.ts';
import { freeTcpPort } from '../src/testing/ports.ts';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 5000);
const CAMERAS = Number(process.env.BENCH_CAMERAS ?? 10_000);
const SERVER_ID = '34020000002000000001';
const DOMAIN = '3402000000';
const PASSWORD = '12345678';

const devices = (n: number): SippDevice[] =>
  Array.from({ length: n }, (_, i) => ({
    deviceId: `3402000000132${String(i).padStart(7, '0')}`,
    password: PASSWORD,
  }));

/** The SIP stack alone: 401 with a fixed challenge, then 200; MESSAGE 200. No digest check, no sessions. */
async function bareServer(): Promise<{ port: number; stop: () => Promise<void> }> {
  const endpoint = new SipEndpoint({ protocols: ['udp'] });
  const challenge = `Digest realm="${DOMAIN}", nonce="${'ab'.repeat(28)}", algorithm=MD5, qop="auth"`;
  endpoint.on('request', (request, peer) => {
    const authorised = sip.header(request, 'authorization') !== undefined;
    if (request.method === 'REGISTER' && !authorised)
      void endpoint.respond(request, peer, 401, {
        headers: [{ name: 'WWW-Authenticate', value: challenge }],
      });
    else if (request.method === 'REGISTER')
      void endpoint.respond(request, peer, 200, { headers: [{ name: 'Date', value: gbDate() }] });
    else void endpoint.respond(request, peer, 200);
  });
  await endpoint.start();
  return { port: endpoint.port, stop: () => endpoint.stop() };
}

async function platformServer(): Promise<{
  port: number;
  stop: () => Promise<void>;
  keepalives: () => number;
}> {
  const platform = new Gb28181Platform({
    endpoint: new SipEndpoint({ protocols: ['udp'] }),
    serverId: SERVER_ID,
    passwordOf: () => PASSWORD,
  });
  await platform.start();
  return { port: platform.port, stop: () => platform.stop(), keepalives: () => platform.stats().keepalives };
}

async function rate(scenario: SippScenario, port: number, perCall: number): Promise<number> {
  const r = await runSipp({
    scenario,
    server: { host: '127.0.0.1', port, id: SERVER_ID, domain: DOMAIN },
    devices: devices(DEVICES),
    rate: 20_000,
    limit: 500,
    timeoutS: 300,
  });
  if (r.exitCode !== 0) throw new Error(`sipp ${scenario} failed (${r.exitCode}): ${r.errors.slice(0, 500)}`);
  return (DEVICES * perCall) / (r.elapsedMs / 1000);
}

async function compare(what: string, scenario: SippScenario, perCall: number): Promise<void> {
  const bare = await bareServer();
  const bareRate = await rate(scenario, bare.port, perCall).finally(() => bare.stop());
  const platform = await platformServer();
  const platformRate = await rate(scenario, platform.port, perCall).finally(() => platform.stop());
  console.log(
    `${what}: platform ${platformRate.toFixed(0)}/s, bare SIP stack ${bareRate.toFixed(0)}/s, ratio ${(platformRate / bareRate).toFixed(2)} (${DEVICES} sipp devices)`,
  );
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function gauge(httpPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

async function cameraMemory(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'citysense-bench-video-'));
  const [httpPort, mqttPort, sipPort] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  const hub = spawnCli(
    [
      'hub',
      ...['--data-dir', join(dir, 'hub'), '--http-host', '127.0.0.1', '--http-port', String(httpPort)],
      ...['--mqtt-host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--media-enabled', 'false'],
      ...['--sip-host', '127.0.0.1', '--sip-port', String(sipPort), '--sip-auto-accept'],
      ...['--sip-query-on-register', 'false'],
    ],
    join(dir, 'hub.log'),
  );
  try {
    for (let i = 0; ; i++) {
      if (
        await fetch(`http://127.0.0.1:${httpPort}/health`)
          .then((r) => r.ok)
          .catch(() => false)
      )
        break;
      if (i > 300) throw new Error(`hub did not start; see ${join(dir, 'hub.log')}`);
      await delay(100);
    }
    const idle = await rssMiB(hub.pid as number);
    const started = Date.now();
    const cameras = await startSipp({
      scenario: 'camera-1min',
      server: { host: '127.0.0.1', port: sipPort, id: SERVER_ID, domain: DOMAIN },
      devices: devices(CAMERAS),
      rate: 1000,
      limit: CAMERAS,
      timeoutS: 600,
    });
    try {
      while ((await gauge(httpPort, 'citysense_video_devices_online')) < CAMERAS) {
        if (Date.now() - started > 300_000) throw new Error('cameras did not all come online in 5 min');
        await delay(1000);
      }
      const online = (Date.now() - started) / 1000;
      // A full keepalive round (60 s) plus margin, sampling RSS.
      let peak = 0;
      const k0 = await gauge(httpPort, 'citysense_video_keepalives');
      for (let t = 0; t < 70; t += 5) {
        peak = Math.max(peak, await rssMiB(hub.pid as number));
        await delay(5000);
      }
      const keepalives = (await gauge(httpPort, 'citysense_video_keepalives')) - k0;
      const stillOnline = await gauge(httpPort, 'citysense_video_devices_online');
      console.log(
        `cameras: ${CAMERAS} on 1-minute keepalive all online after ${online.toFixed(1)} s; over the next 70 s ${keepalives} keepalives, ${stillOnline} online; hub RSS idle ${idle.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB (${peak < 1024 ? 'under' : 'OVER'} 1 GiB)`,
      );
    } finally {
      cameras.child.kill('SIGKILL');
      await cameras.done;
    }
  } finally {
    await kill9(hub);
  }
}

await compare('registrations (REGISTER, 401, REGISTER with digest, 200)', 'register-only', 1);
await compare('keepalives (MESSAGE Notify/Keepalive, 200)', 'keepalive-flood', 20);
await cameraMemory();
