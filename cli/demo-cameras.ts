/**
 * The demo's GB/T 28181 and ONVIF slice: a simulated NVR with three street cameras that
 * registers with the hub's SIP platform (admitted in the video ledger first), streams live
 * PS over RTP when the hub asks and raises an alarm; and a simulated ONVIF camera that
 * pole-002's agent watches (motion and tamper events). Every step is idempotent.
 */
import { errorMessage } from '@citysense/protocol';
import { Gb28181Camera, OnvifCamera } from '@citysense/simulators';
import type { HubClient } from './hub-client.ts';

/** The NVR's ID: centre 34020000, industry 00, type 118 (NVR), network 0, serial 000001. */
export const DEMO_NVR_ID = '34020000001180000001';
/** ONVIF credentials of the simulated camera, also written into pole-002's agent config. */
export const DEMO_ONVIF_USER = { username: 'admin', password: 'citysense-demo' } as const;

const CHANNELS = [
  {
    id: '34020000001310000001',
    name: '长安街与王府井大街交叉口东北角',
    longitude: 116.4109,
    latitude: 39.9087,
  },
  { id: '34020000001310000002', name: '天安门东公交站', longitude: 116.4012, latitude: 39.9081 },
  { id: '34020000001310000003', name: '南池子大街北口', longitude: 116.4035, latitude: 39.9103 },
];

/** What the slice runs. */
export interface DemoCameras {
  nvr: Gb28181Camera | undefined;
  onvif: OnvifCamera | undefined;
  /** Where the hub relays the NVR's first channel, once live. */
  live: Promise<{ rtmpUrl: string; flvUrl: string } | undefined>;
  stop(): Promise<void>;
}

/** Starts the simulated NVR and ONVIF camera; a part that cannot start is reported and skipped. */
export async function startDemoCameras(o: {
  client: HubClient;
  sipPort: number;
  sipPassword: string;
  serverId: string;
  onvifPort: number;
}): Promise<DemoCameras> {
  const onvif = new OnvifCamera({ ...DEMO_ONVIF_USER, port: o.onvifPort, discovery: false });
  const onvifStarted = await onvif.start().then(
    () => true,
    (err: unknown) => {
      console.error(`onvif: camera skipped (${errorMessage(err)}); try --onvif-port with a free port`);
      return false;
    },
  );
  await o.client.request('POST', '/v1/video/devices', { deviceId: DEMO_NVR_ID, name: '长安街 NVR' });
  const nvr = new Gb28181Camera({
    deviceId: DEMO_NVR_ID,
    password: o.sipPassword,
    server: { id: o.serverId, host: '127.0.0.1', port: o.sipPort },
    channels: CHANNELS,
    name: '长安街 NVR',
    manufacturer: 'citysense',
    model: 'simulated NVR',
    media: { width: 640, height: 360, frameRate: 10 },
  });
  const nvrStarted = await nvr.start().then(
    () => true,
    (err: unknown) => {
      console.error(`gb28181: NVR skipped (${errorMessage(err)})`);
      return false;
    },
  );
  const live = nvrStarted ? openLive(o.client, nvr) : Promise.resolve(undefined);
  // Something happens in front of the ONVIF camera every half minute, for five seconds.
  let motion: NodeJS.Timeout | undefined;
  if (onvifStarted)
    motion = setInterval(() => {
      onvif.raiseMotion(true);
      setTimeout(() => onvif.raiseMotion(false), 5000).unref();
    }, 30_000).unref();
  return {
    nvr: nvrStarted ? nvr : undefined,
    onvif: onvifStarted ? onvif : undefined,
    live,
    async stop() {
      clearInterval(motion);
      await Promise.allSettled([nvr.stop(), onvif.stop()]);
    },
  };
}

/** Waits for the hub to learn the NVR's channels, opens live video of the first and raises one alarm. */
async function openLive(
  client: HubClient,
  nvr: Gb28181Camera,
): Promise<{ rtmpUrl: string; flvUrl: string } | undefined> {
  const first = CHANNELS[0]?.id as string;
  for (let i = 0; i < 60; i++) {
    const channels = await client
      .request<Array<{ channelId: string }>>('GET', `/v1/video/devices/${DEMO_NVR_ID}/channels`)
      .catch(() => []);
    if (channels.some((c) => c.channelId === first)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  try {
    const live = await client.request<{ rtmpUrl: string; flvUrl: string }>(
      'POST',
      `/v1/video/channels/${first}/live`,
      {},
    );
    await nvr.raiseAlarm({
      priority: 3,
      method: 5,
      type: '2',
      description: '区域入侵（演示）',
      channelId: first,
    });
    return live;
  } catch (err) {
    console.error(`gb28181: live video skipped (${errorMessage(err)})`);
    return undefined;
  }
}
