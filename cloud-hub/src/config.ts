import { type Static, Type } from '@sinclair/typebox';

/** Configuration of `citysense hub`: one document, validated at start, then frozen. */
export const HubConfigSchema = Type.Object(
  {
    httpHost: Type.String({ default: '0.0.0.0', description: 'HTTP API bind address' }),
    httpPort: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 8080,
      description: 'HTTP API port (also MQTT over websockets at /mqtt)',
    }),
    mqttHost: Type.String({ default: '0.0.0.0', description: 'embedded MQTT broker bind address' }),
    mqttPort: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 1883,
      description: 'embedded MQTT broker TCP port',
    }),
    dataDir: Type.String({ default: './data', description: 'embedded database and admin token live here' }),
    databaseUrl: Type.Optional(
      Type.String({
        pattern: '^postgres(ql)?://',
        description: 'PostgreSQL/TimescaleDB server instead of the embedded database (env DATABASE_URL)',
      }),
    ),
    mqttUrl: Type.Optional(
      Type.String({
        pattern: '^(mqtts?|wss?)://',
        description: 'external MQTT broker instead of the embedded one (env MQTT_URL)',
      }),
    ),
    publicMqttUrl: Type.Optional(
      Type.String({
        pattern: '^(mqtts?|wss?)://',
        description:
          'MQTT URL handed to enrolling nodes (default: the host they used for HTTP, port mqttPort)',
      }),
    ),
    groupId: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$',
      default: 'city',
      description: 'Sparkplug group id of this hub',
    }),
    hubId: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$',
      default: 'citysense-hub',
      description: 'Sparkplug host application id (STATE topic)',
    }),
    adminToken: Type.Optional(
      Type.String({
        minLength: 16,
        description: 'admin bearer token (env CITYSENSE_ADMIN_TOKEN); generated into the data dir if unset',
      }),
    ),
    maxPayloadBytes: Type.Integer({
      minimum: 1024,
      default: 1_048_576,
      description: 'largest accepted MQTT payload',
    }),
    ingestBatchRows: Type.Integer({ minimum: 1, default: 10_000, description: 'rows per database insert' }),
    ingestFlushMs: Type.Integer({
      minimum: 1,
      default: 50,
      description: 'longest wait before a partial batch is written',
    }),
    ingestBufferRows: Type.Integer({
      minimum: 1,
      default: 100_000,
      description: 'buffered rows above which input is held back',
    }),
    artifactDir: Type.Optional(
      Type.String({
        description: 'algorithm packages and other artefacts live here (default <dataDir>/artifacts)',
      }),
    ),
    algorithmMaxPackageBytes: Type.Integer({
      minimum: 1024,
      default: 536_870_912,
      description: 'largest algorithm package (.csalgo) accepted for upload',
    }),
    centreKeyAlgorithm: Type.String({
      pattern: '^(ed25519|sm2-sm3)$',
      default: 'ed25519',
      description:
        'algorithm of the centre signing key generated into the data dir on first start: ed25519 | sm2-sm3',
    }),
    deploymentCheckIntervalMs: Type.Integer({
      minimum: 50,
      default: 5000,
      description: 'how often deployments in canary are checked for an expired gate timeout',
    }),
    otaMaxArtifactBytes: Type.Integer({
      minimum: 1024,
      default: 1_073_741_824,
      description: 'largest OTA artifact (.csota) accepted for upload',
    }),
    otaCheckIntervalMs: Type.Integer({
      minimum: 50,
      default: 5000,
      description: 'how often OTA campaigns in canary are checked for an expired gate timeout',
    }),
    sip: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description: 'serve GB/T 28181 devices over SIP (UDP and TCP)',
        }),
        id: Type.String({
          pattern: '^[0-9]{10}200[0-9]{7}$',
          default: '34020000002000000001',
          description: 'SIP server ID of the hub: 20 digits, type 200 (GB/T 28181 Annex D)',
        }),
        domain: Type.Optional(
          Type.String({
            pattern: '^[0-9]{10}$',
            description: 'SIP domain / digest realm (default: first 10 digits of the ID)',
          }),
        ),
        host: Type.String({ default: '0.0.0.0', description: 'SIP bind address' }),
        port: Type.Integer({
          minimum: 0,
          maximum: 65535,
          default: 5060,
          description: 'SIP port, UDP and TCP',
        }),
        publicAddress: Type.Optional(
          Type.String({
            description: 'IPv4 address devices reach the hub on (Via, Contact, SDP); default the bind host',
          }),
        ),
        password: Type.String({
          minLength: 1,
          default: '12345678',
          description: 'digest password of devices (GB/T 28181 devices share one per platform)',
        }),
        autoAccept: Type.Boolean({
          default: false,
          description: 'let any device with a valid ID and password register, not only admitted ones',
        }),
        keepaliveIntervalS: Type.Integer({
          minimum: 1,
          default: 60,
          description: 'expected keepalive interval, s',
        }),
        keepaliveMissed: Type.Integer({
          minimum: 1,
          default: 3,
          description: 'missed keepalives before a device is offline',
        }),
        queryOnRegister: Type.Boolean({
          default: true,
          description: 'ask new devices for DeviceInfo and Catalog',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    media: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description: 'RTMP ingest and HTTP-FLV playback (node-media-server), and GB/T 28181 live relay',
        }),
        host: Type.String({ default: '0.0.0.0', description: 'RTMP and HTTP-FLV bind address' }),
        rtmpPort: Type.Integer({ minimum: 0, maximum: 65535, default: 1935, description: 'RTMP port' }),
        httpPort: Type.Integer({
          minimum: 0,
          maximum: 65535,
          default: 8000,
          description: 'HTTP-FLV / MPEG-TS playback port',
        }),
        publishSecret: Type.Optional(
          Type.String({ minLength: 8, description: 'RTMP publishers must add ?token=<secret> to their URL' }),
        ),
        rtpHost: Type.String({ default: '0.0.0.0', description: 'bind address of GB/T 28181 RTP receivers' }),
        liveIdleTimeoutS: Type.Integer({
          minimum: 1,
          default: 15,
          description: 'a live GB/T 28181 session without RTP this long is ended',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    ledger: Type.Object(
      {
        centreCode: Type.Optional(
          Type.String({
            pattern: '^[0-9]{8}$',
            description: 'centre code of allocated device codes (default: first 8 digits of sip.id)',
          }),
        ),
        duplicateRadiusM: Type.Record(Type.String(), Type.Number({ minimum: 0 }), {
          default: { camera: 50, '*': 20 },
          description: 'duplicate-build radius per device kind, metres; * for other kinds; 0 = off',
        }),
        importMaxRows: Type.Integer({
          minimum: 1,
          default: 200_000,
          description: 'most rows one CSV import request may carry',
        }),
        webhookUrl: Type.Optional(
          Type.String({
            pattern: '^https?://',
            description: 'the filing chain is pushed here (city big-data platform), with retry',
          }),
        ),
        webhookBackoffMs: Type.Integer({
          minimum: 10,
          default: 1000,
          description: 'first retry delay of a failed webhook push; doubles per attempt',
        }),
        webhookMaxBackoffMs: Type.Integer({
          minimum: 10,
          default: 300_000,
          description: 'longest delay between webhook push attempts',
        }),
        enforce: Type.Union([Type.Literal('off'), Type.Literal('video'), Type.Literal('all')], {
          default: 'video',
          description:
            'the runtime obeys the ledger: off = ledger ignored; video = GB/T 28181 devices with a ledger entry register only when approved, installed, active or in maintenance; all = also drop Sparkplug data of devices whose id is a ledger code in another state',
        }),
      },
      { default: {}, additionalProperties: false, description: 'sensor ledger' },
    ),
    alarms: Type.Object(
      {
        webhookUrl: Type.Optional(
          Type.String({
            pattern: '^https?://',
            description: 'every alarm transition is POSTed here (rules may add their own target)',
          }),
        ),
        webhookSecret: Type.Optional(
          Type.String({
            minLength: 16,
            description:
              'HMAC-SHA256 key of the x-citysense-signature-256 header (default: generated into <dataDir>/alarm-webhook-secret)',
          }),
        ),
        webhookBackoffMs: Type.Integer({
          minimum: 10,
          default: 1000,
          description: 'first retry delay of a failed alarm webhook; doubles per attempt',
        }),
        webhookMaxBackoffMs: Type.Integer({
          minimum: 10,
          default: 300_000,
          description: 'longest delay between alarm webhook attempts',
        }),
        webhookMaxAttempts: Type.Integer({
          minimum: 1,
          default: 20,
          description: 'attempts before a notification is marked failed (the alarm itself stays)',
        }),
        webhookTimeoutMs: Type.Integer({ minimum: 100, default: 10_000, description: 'per-request timeout' }),
        tickMs: Type.Integer({
          minimum: 10,
          default: 1000,
          description: 'how often absence and duration rules are checked',
        }),
        flushMs: Type.Integer({
          minimum: 1,
          default: 250,
          description: 'how often de-duplicated alarm repeats are written',
        }),
      },
      { default: {}, additionalProperties: false, description: 'rules engine and tiered alarms' },
    ),
    console: Type.Object(
      {
        tileUrl: Type.Optional(
          Type.String({
            pattern: '^(https?://|/)',
            description:
              'XYZ basemap tiles for the web console map (Web Mercator), e.g. https://tiles.example.gov.cn/{z}/{x}/{y}.png; default: the bundled offline grid and district outlines',
          }),
        ),
        tileAttribution: Type.Optional(
          Type.String({ maxLength: 200, description: 'credit line shown under the tiles' }),
        ),
        distDir: Type.Optional(
          Type.String({
            description: 'built web console served at / (default: console/dist of this install)',
          }),
        ),
      },
      { default: {}, additionalProperties: false, description: 'web console served at /' },
    ),
    maintenanceIntervalMs: Type.Integer({
      minimum: 1000,
      default: 60_000,
      description: 'embedded database: how often TimescaleDB jobs run',
    }),
  },
  { additionalProperties: false },
);

/** Validated hub configuration. */
export type HubConfig = Static<typeof HubConfigSchema>;
