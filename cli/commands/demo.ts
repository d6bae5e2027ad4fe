import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hub } from '@citysense/cloud-hub';
import { errorMessage, hasCode, rootLogger } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { optionsOf, readCommandOptions } from '../config-loader.ts';
import { DEMO_NVR_ID, DEMO_ONVIF_USER, startDemoCameras } from '../demo-cameras.ts';
import { startDemoVideo } from '../demo-video.ts';
import { prepareGateway } from '../fleet.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';
import { untilSignal } from '../signals.ts';
import { hubConfigFrom } from './hub.ts';

const DemoOptionsSchema = Type.Object({
  gateways: Type.Integer({
    minimum: 1,
    maximum: 50,
    default: 3,
    description: 'simulated lamp-pole gateways to run',
  }),
  dataDir: Type.String({ default: './data', description: 'hub database, admin token and gateway state' }),
  httpPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'hub HTTP port' }),
  mqttPort: Type.Integer({ minimum: 0, maximum: 65535, default: 1883, description: 'hub MQTT port' }),
  intervalMs: Type.Integer({
    minimum: 100,
    default: 2000,
    description: 'sensor sampling interval of the simulated poles',
  }),
  cameraPort: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 8090,
    description: 'port of the simulated street camera (MJPEG over HTTP) watched by pole-001',
  }),
  video: Type.Boolean({
    default: true,
    description: 'run the cameras, YOLOX-nano and video quality diagnosis (--video false: sensors only)',
  }),
  sipPort: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 5060,
    description: 'hub GB/T 28181 SIP port (UDP and TCP) the simulated NVR registers on',
  }),
  rtmpPort: Type.Integer({ minimum: 0, maximum: 65535, default: 1935, description: 'hub RTMP port' }),
  flvPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8000, description: 'hub HTTP-FLV port' }),
  onvifPort: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 8091,
    description: 'port of the simulated ONVIF camera watched by pole-002',
  }),
});
type DemoOptions = {
  gateways: number;
  dataDir: string;
  httpPort: number;
  mqttPort: number;
  intervalMs: number;
  cameraPort: number;
  video: boolean;
  sipPort: number;
  rtmpPort: number;
  flvPort: number;
  onvifPort: number;
};
const demoOptions = optionsOf(DemoOptionsSchema);

const CLI = fileURLToPath(new URL('../../bin/citysense.mjs', import.meta.url));

/** One supervised agent child process. */
class GatewayProcess {
  #child: ChildProcess | undefined;
  #stopping = false;
  constructor(
    readonly id: string,
    readonly args: string[],
    readonly logFile: string,
  ) {}

  start(): void {
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [CLI, 'agent', ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    child.on('exit', (code, signal) => {
      if (this.#stopping) return;
      console.log(`gateway ${this.id} exited (${signal ?? code}); restarting in 2 s — see ${this.logFile}`);
      setTimeout(() => !this.#stopping && this.start(), 2000).unref();
    });
    this.#child = child;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Camera drivers of gateway `i`: pole-001 diagnoses its street camera's picture, pole-002 watches the ONVIF camera. */
function cameraDrivers(i: number, o: DemoOptions): Array<Record<string, unknown>> {
  if (i === 1)
    return [
      {
        type: 'video-quality',
        id: 'quality',
        options: {
          cameras: [{ id: 'street-camera', input: `http://127.0.0.1:${o.cameraPort}/video.mjpg`, fps: 0.5 }],
        },
      },
    ];
  if (i === 2)
    return [
      {
        type: 'onvif',
        id: 'onvif',
        options: { cameraId: 'onvif-camera', hostname: '127.0.0.1', port: o.onvifPort, ...DEMO_ONVIF_USER },
      },
    ];
  return [];
}

/** `citysense demo` (what `npm start` runs): hub + embedded broker and database + simulated gateways. */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'run the hub with embedded broker and database plus a fleet of simulated lamp-pole gateways',
  async run(argv) {
    const o = readCommandOptions<DemoOptions>(argv, {
      schema: DemoOptionsSchema,
      options: demoOptions,
      usage: 'Usage: citysense demo [options]',
      summary: demoCommand.summary,
    });
    if (!o) return 0;
    const dataDir = resolve(o.dataDir);
    const { config } = hubConfigFrom([
      '--data-dir',
      dataDir,
      '--http-port',
      String(o.httpPort),
      '--mqtt-port',
      String(o.mqttPort),
      '--sip-port',
      String(o.sipPort),
      '--media-rtmp-port',
      String(o.rtmpPort),
      '--media-http-port',
      String(o.flvPort),
    ]);
    const hub = new Hub(config, rootLogger);
    console.log('starting the citysense hub (embedded MQTT broker and TimescaleDB)...');
    const endpoints = await hub.start();
    const hubUrl = `http://127.0.0.1:${new URL(endpoints.httpUrl).port}`;
    const client = new HubClient(hubUrl, endpoints.adminToken.token);

    const gateways: GatewayProcess[] = [];
    for (let i = 1; i <= o.gateways; i++) {
      const g = await prepareGateway(
        client,
        hubUrl,
        join(dataDir, 'gateways'),
        i,
        o.intervalMs,
        o.video ? cameraDrivers(i, o) : [],
      );
      const agentArgs = ['--config', g.configFile, ...(g.token ? ['--token', g.token] : [])];
      const gw = new GatewayProcess(g.id, agentArgs, join(g.stateDir, 'agent.log'));
      gw.start();
      gateways.push(gw);
    }

    // The video slice is a bonus on top of the sensor fleet: if it cannot start (camera port
    // taken), the demo says why and runs on without it.
    const video = o.video
      ? await startDemoVideo({
          client,
          hubUrl,
          adminToken: endpoints.adminToken.token,
          dataDir,
          cameraPort: o.cameraPort,
          nodeId: gateways[0]?.id ?? 'pole-001',
          nodeIds: gateways.map((g) => g.id),
        }).catch((err: unknown) => {
          console.error(`video: skipped (${errorMessage(err)}); try --camera-port with a free port`);
          return undefined;
        })
      : undefined;

    const cameras = o.video
      ? await startDemoCameras({
          client,
          sipPort: hub.video.platform.port,
          sipPassword: config.sip.password,
          serverId: config.sip.id,
          onvifPort: o.onvifPort,
        }).catch((err: unknown) => {
          console.error(`cameras: skipped (${errorMessage(err)})`);
          return undefined;
        })
      : undefined;

    await createDemoRules(client);

    const tokenShown =
      endpoints.adminToken.source === 'config' ? '(from CITYSENSE_ADMIN_TOKEN)' : endpoints.adminToken.token;
    const auth = `-H "Authorization: Bearer ${endpoints.adminToken.source === 'config' ? '$CITYSENSE_ADMIN_TOKEN' : endpoints.adminToken.token}"`;
    console.log(`
citysense demo is running: ${o.gateways} simulated lamp-pole gateways, each its own agent process
with its own identity and disk spool, streaming Sparkplug B over MQTT into TimescaleDB.

  web console  ${endpoints.httpUrl}/  (sign in with the admin token: "使用令牌登录" / "Sign in with a token")
  API docs     ${endpoints.httpUrl}/docs
  metrics      ${endpoints.httpUrl}/metrics
  MQTT         ${endpoints.mqttUrl}  (ws: ws://localhost:${new URL(endpoints.httpUrl).port}/mqtt)
  admin token  ${tokenShown}
  data         ${dataDir}  (gateway logs in ${join(dataDir, 'gateways', '<id>', 'agent.log')})

Five things to try:
  1. The fleet, online state and latest health:
       curl -s ${auth} ${endpoints.httpUrl}/v1/nodes
  2. PM2.5 on pole-001, raw and in 5-minute buckets:
       curl -s ${auth} '${endpoints.httpUrl}/v1/readings?node=pole-001&device=pole-001.air&metric=PM2.5'
       curl -s ${auth} '${endpoints.httpUrl}/v1/readings?node=pole-001&device=pole-001.air&metric=PM2.5&bucket=5m'
  3. What YOLOX-nano on pole-001 sees in the simulated camera ${video ? video.camera.url : '(not running)'},
     objects per minute, and the alerts the gateway raised on its own:
       curl -s ${auth} '${endpoints.httpUrl}/v1/analytics/detection-counts?node=pole-001&bucket=1m'
       curl -s ${auth} '${endpoints.httpUrl}/v1/alerts?node=pole-001'
       npx citysense algo deployments
  4. GB/T 28181: the simulated NVR registered over SIP (port ${o.sipPort}), its cameras, alarms and
     live video relayed to RTMP / HTTP-FLV; pole-002 watches an ONVIF camera, pole-001 diagnoses
     its camera's picture quality:
       curl -s ${auth} ${endpoints.httpUrl}/v1/video/devices/${DEMO_NVR_ID}/channels
       curl -s ${auth} ${endpoints.httpUrl}/v1/video/alarms
       curl -s ${auth} ${endpoints.httpUrl}/v1/video/live
       curl -s ${auth} '${endpoints.httpUrl}/v1/readings?node=pole-002&device=onvif-camera&metric=Video/Motion'
       curl -s ${auth} '${endpoints.httpUrl}/v1/readings?node=pole-001&device=street-camera&metric=Quality/Status'
  5. Enrol another gateway by hand:
       npx citysense token create --name pole-100
       npx citysense agent --hub ${endpoints.httpUrl} --token <token> --state-dir ./data/gateways/pole-100

Ctrl-C stops everything; the next 'npm start' reuses the data and identities.
`);
    const committed = () => hub.metrics.readingsCommitted.get();
    let last = committed();
    const ticker = setInterval(async () => {
      const now = committed();
      const nodes = await client.request<Array<{ status: string }>>('GET', '/v1/nodes').catch(() => []);
      console.log(
        `${new Date().toLocaleTimeString()}  nodes online ${nodes.filter((n) => n.status === 'online').length}/${nodes.length}  readings stored ${now} (+${now - last})`,
      );
      last = now;
    }, 15_000);

    cameras?.live.then((live) => {
      if (live)
        console.log(`gb28181: live video of the NVR's first camera at ${live.rtmpUrl} and ${live.flvUrl}`);
    });
    video?.deployed.then(
      (id) =>
        console.log(
          `video: YOLOX-nano runs on ${video.nodeId} (deployment ${id}), watching ${video.camera.url}`,
        ),
      (err: unknown) => console.error(`video: could not deploy YOLOX-nano: ${errorMessage(err)}`),
    );
    await untilSignal();
    clearInterval(ticker);
    console.log('stopping gateways and hub...');
    await Promise.all(gateways.map((g) => g.stop()));
    await video?.camera.stop();
    await cameras?.stop();
    await hub.stop();
    console.log('stopped.');
    return 0;
  },
};

/**
 * Alarm rules of the demo city, so that Operations shows tiered alarms from the start: a
 * gateway offline, PM2.5 over the national 24-hour limit, an open manhole cover. Created once;
 * a rule already there (409) is left as the operator edited it.
 */
async function createDemoRules(client: HubClient): Promise<void> {
  const rules = [
    {
      id: 'demo-gateway-offline',
      name: '网关离线 Gateway offline',
      severity: 'critical',
      scope: { device: '', metric: 'Health/Online' },
      condition: { kind: 'threshold', op: '==', value: 0 },
    },
    {
      id: 'demo-pm25-high',
      name: 'PM2.5 超标 PM2.5 over 75',
      severity: 'major',
      scope: { metric: 'PM2.5' },
      condition: { kind: 'threshold', op: '>', value: 75, clearValue: 60 },
    },
    {
      id: 'demo-manhole-open',
      name: '井盖开启 Manhole cover open',
      severity: 'minor',
      // Pole tilt stays within a few degrees; a lifted manhole cover tilts far more.
      scope: { metric: 'Tilt' },
      condition: { kind: 'duration', op: '>', value: 15, forS: 30 },
    },
  ];
  for (const rule of rules)
    await client.request('POST', '/v1/alarm-rules', rule).catch((err: unknown) => {
      if (!hasCode(err, 'CS_ERR_RULE_DUPLICATE'))
        console.error(`alarm rule ${rule.id}: ${errorMessage(err)}`);
    });
}
