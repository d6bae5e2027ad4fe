/**
 * Options of the GB/T 28181 pole driver as one TypeBox schema: the SIP server the pole's cameras
 * register with, the cameras admitted on the pole, and an optional higher platform (the hub) that the
 * gateway registers with as a lower-level platform (GB/T 28181-2016 §5.3 cascade).
 */
import { parseGbId } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { type DriverConfigProblem, resolveDriverConfig } from '../../config.ts';

/** 20 decimal digits; the segments are checked by parseGbId in the cross checks. */
const GB_ID = '^[0-9]{20}$';
/** A platform ID: type 200 (SIP server, GB/T 28181-2016 Annex D). */
const GB_PLATFORM_ID = '^[0-9]{10}200[0-9]{7}$';

/** The SIP server of the pole, the one its cameras register with. */
export const Gb28181SipConfig = Type.Object(
  {
    id: Type.String({
      pattern: GB_PLATFORM_ID,
      description: 'SIP server ID of this gateway: 20 digits, type 200; the cameras register with it',
    }),
    domain: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description: 'SIP domain and digest realm; default the first 10 digits of the ID',
      }),
    ),
    host: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Bind address for UDP and TCP' }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65_535,
      default: 5060,
      description: 'SIP port for UDP and TCP; 0 picks a free one',
    }),
    publicAddress: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Address written into Via and Contact as cameras reach the gateway; set it when host is 0.0.0.0',
      }),
    ),
    password: Type.String({
      minLength: 1,
      description: 'Digest password every admitted camera registers with',
    }),
    keepaliveIntervalS: Type.Number({
      exclusiveMinimum: 0,
      default: 60,
      description: 'Keepalive period expected from the cameras (and sent upward), s',
    }),
    keepaliveMissed: Type.Integer({
      minimum: 1,
      default: 3,
      description: 'Missed keepalives before a camera counts as offline',
    }),
  },
  { additionalProperties: false },
);

/** One camera admitted on the pole. */
export const Gb28181CameraConfig = Type.Object(
  {
    id: Type.String({
      pattern: GB_ID,
      description: 'GB/T 28181 device ID of the camera (IPC 132, NVR 118, …); also its Sparkplug device id',
    }),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: 'Shown in logs and alarms' }),
    ),
  },
  { additionalProperties: false },
);

/** The higher platform the gateway registers with as a lower-level platform. */
export const Gb28181UpstreamConfig = Type.Object(
  {
    serverId: Type.String({ pattern: GB_ID, description: 'SIP server ID of the higher platform' }),
    localId: Type.String({
      pattern: GB_PLATFORM_ID,
      description:
        'ID of this gateway towards the higher platform (type 200); it must differ from sip.id, which the cameras use',
    }),
    domain: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description:
          'SIP domain and digest realm of the higher platform; default the first 10 digits of serverId',
      }),
    ),
    host: Type.String({ minLength: 1, description: 'Address of the higher platform' }),
    port: Type.Integer({ minimum: 1, maximum: 65_535, default: 5060 }),
    transport: Type.Union([Type.Literal('udp'), Type.Literal('tcp')], { default: 'udp' }),
    password: Type.String({ minLength: 1, description: 'Password the higher platform expects for localId' }),
    name: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description: "The gateway's name in the higher platform's catalog",
      }),
    ),
  },
  { additionalProperties: false },
);

/** Options of a Gb28181Driver. */
export const Gb28181DriverConfig = Type.Object(
  {
    sip: Gb28181SipConfig,
    cameras: Type.Array(Gb28181CameraConfig, {
      minItems: 1,
      description:
        'Cameras admitted on this pole, one Sparkplug device each; any other is refused at REGISTER',
    }),
    statusIntervalMs: Type.Integer({
      minimum: 10,
      default: 10_000,
      description: 'Period of the Video/Online and Video/Registered readings of every camera, ms',
    }),
    upstream: Type.Optional(Gb28181UpstreamConfig),
  },
  { additionalProperties: false },
);

/** Resolved options of the SIP server. */
export type Gb28181SipConfig = Static<typeof Gb28181SipConfig>;
/** Resolved options of one camera. */
export type Gb28181CameraConfig = Static<typeof Gb28181CameraConfig>;
/** Resolved options of the higher platform. */
export type Gb28181UpstreamConfig = Static<typeof Gb28181UpstreamConfig>;
/** Resolved options of a Gb28181Driver. */
export type Gb28181DriverConfig = Static<typeof Gb28181DriverConfig>;

/** Applies defaults and validates; throws CS_ERR_CONFIG_INVALID listing every problem at once. */
export function resolveGb28181DriverConfig(input: unknown): Readonly<Gb28181DriverConfig> {
  return resolveDriverConfig(Gb28181DriverConfig, input, 'GB/T 28181 driver options', crossProblems);
}

/** What the schema cannot say: valid ID segments, no ID used twice. */
function crossProblems(config: Gb28181DriverConfig): DriverConfigProblem[] {
  const problems: DriverConfigProblem[] = [];
  const checkId = (id: string, path: string): void => {
    try {
      parseGbId(id);
    } catch (err) {
      problems.push({ path, message: (err as Error).message });
    }
  };
  checkId(config.sip.id, '/sip/id');
  const seen = new Set<string>([config.sip.id]);
  config.cameras.forEach((camera, i) => {
    checkId(camera.id, `/cameras/${i}/id`);
    if (seen.has(camera.id))
      problems.push({
        path: `/cameras/${i}/id`,
        message: `ID ${camera.id} is used twice (cameras and sip.id must all differ)`,
      });
    seen.add(camera.id);
  });
  const upstream = config.upstream;
  if (upstream) {
    checkId(upstream.serverId, '/upstream/serverId');
    checkId(upstream.localId, '/upstream/localId');
    // The cascade keeps the two roles apart: the higher platform must not see the cameras' server ID.
    if (seen.has(upstream.localId))
      problems.push({
        path: '/upstream/localId',
        message: `ID ${upstream.localId} is already sip.id or a camera; give the gateway its own ID upward`,
      });
    if (upstream.serverId === upstream.localId || upstream.serverId === config.sip.id)
      problems.push({
        path: '/upstream/serverId',
        message: 'the higher platform needs an ID of its own, not one of this gateway',
      });
  }
  return problems;
}
