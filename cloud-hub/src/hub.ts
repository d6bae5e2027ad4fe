import { join } from 'node:path';
import { type AdaptationTester, runAdaptationTest } from '@citysense/algorithms';
import {
  ASSIGNMENTS_REVISION,
  CitysenseError,
  componentLogger,
  DataType,
  errorMessage,
  isSignatureAlgorithm,
  type Logger,
  OPERATIONS_REVISION,
  OTA_REVISION,
} from '@citysense/protocol';
import type { FastifyInstance } from 'fastify';
import { type AdminToken, resolveAdminToken } from './admin-token.ts';
import { LedgerAdmission } from './admission/ledger-admission.ts';
import { RefusalLog } from './admission/refusal-log.ts';
import { refusalRoutes } from './admission/routes.ts';
import { AlarmService } from './alarms/alarm-service.ts';
import { alarmRoutes } from './alarms/routes.ts';
import { resolveAlarmWebhookSecret } from './alarms/webhook-secret.ts';
import { AlgorithmCentre } from './algorithms/algorithm-centre.ts';
import { algorithmRoutes } from './algorithms/routes.ts';
import { AnalyticsStore } from './analytics/analytics-store.ts';
import { analyticsRoutes } from './analytics/routes.ts';
import { AuditLog } from './audit/audit-log.ts';
import { auditRoutes } from './audit/routes.ts';
import { ApiTokenStore } from './auth/api-tokens.ts';
import { AuthService } from './auth/auth-service.ts';
import { UserDirectory } from './auth/directory.ts';
import { resolveJwtSecret } from './auth/jwt.ts';
import { authRoutes } from './auth/routes.ts';
import { EmbeddedBroker } from './broker/embedded-broker.ts';
import { ExternalBus } from './broker/external-bus.ts';
import type { MessageBus } from './broker/message-bus.ts';
import { CarrierStore } from './carriers/carrier-store.ts';
import { carrierRoutes } from './carriers/routes.ts';
import { CatalogueService } from './catalogue/catalogue-service.ts';
import { catalogueRoutes } from './catalogue/routes.ts';
import type { HubConfig } from './config.ts';
import { type LiveFeed, mountConsole } from './console/index.ts';
import { DataDirLock } from './data-dir-lock.ts';
import { DeploymentService } from './deployments/deployment-service.ts';
import { deploymentRoutes } from './deployments/routes.ts';
import { Counter, createHubMetrics, Gauge, type HubMetrics } from './http/metrics.ts';
import { opsRoutes } from './http/ops-routes.ts';
import { closeHttpServer, createHttpServer } from './http/server.ts';
import { LedgerService } from './ledger/ledger-service.ts';
import { ledgerRoutes } from './ledger/routes.ts';
import { LedgerWebhook } from './ledger/webhook.ts';
import { OperationService } from './operations/operation-service.ts';
import { operationRoutes } from './operations/routes.ts';
import { OtaArtifactService } from './ota/artifact-service.ts';
import { CampaignService } from './ota/campaign-service.ts';
import { registerOtaGauges } from './ota/metrics.ts';
import { otaRoutes } from './ota/routes.ts';
import { EnrollmentService } from './registry/enrollment.ts';
import { NodeRegistry } from './registry/node-registry.ts';
import { registryRoutes } from './registry/routes.ts';
import { TokenStore } from './registry/token-store.ts';
import { ReviewService } from './review/review-service.ts';
import { hasApprovedProject, ReviewStore } from './review/review-store.ts';
import { reviewRoutes } from './review/routes.ts';
import type { Database } from './storage/database.ts';
import { StorageMaintenance } from './storage/maintenance.ts';
import { migrate } from './storage/migrate.ts';
import { openDatabase } from './storage/open.ts';
import { BatchWriter } from './telemetry/batch-writer.ts';
import { ReadingStore } from './telemetry/reading-store.ts';
import { telemetryRoutes } from './telemetry/routes.ts';
import { type LatestHealth, SparkplugHost } from './telemetry/sparkplug-host.ts';
import { HUB_VERSION } from './version.ts';
import { liveRoutes, videoRoutes } from './video/routes.ts';
import { VideoService } from './video/video-service.ts';
import { VideoStore } from './video/video-store.ts';

/** Where a running hub can be reached. */
export interface HubEndpoints {
  httpUrl: string;
  mqttUrl: string;
  adminToken: AdminToken;
}

/** Parts of the hub that are code rather than configuration. */
export interface HubOptions {
  /** Runs the adaptation test of algorithm packages; default `runAdaptationTest` (ONNX Runtime, in-process). */
  adaptationTester?: AdaptationTester;
}

/**
 * The citysense hub: storage, MQTT (embedded broker or external), the Sparkplug
 * host that ingests telemetry, and the HTTP API. Components start in order and
 * stop in reverse.
 */
export class Hub {
  readonly config: Readonly<HubConfig>;
  readonly #log: Logger;
  readonly metrics: HubMetrics = createHubMetrics();
  readonly #options: HubOptions;
  #db: Database | undefined;
  #algorithms: AlgorithmCentre | undefined;
  #deployments: DeploymentService | undefined;
  #operations: OperationService | undefined;
  #otaArtifacts: OtaArtifactService | undefined;
  #campaigns: CampaignService | undefined;
  #video: VideoService | undefined;
  #ledger: LedgerService | undefined;
  #ledgerWebhook: LedgerWebhook | undefined;
  #admission: LedgerAdmission | undefined;
  #refusals: RefusalLog | undefined;
  #alarms: AlarmService | undefined;
  #lock: DataDirLock | undefined;
  #audit: AuditLog | undefined;
  #maintenance: StorageMaintenance | undefined;
  #broker: EmbeddedBroker | undefined;
  #external: ExternalBus | undefined;
  #writer: BatchWriter | undefined;
  #host: SparkplugHost | undefined;
  #http: FastifyInstance | undefined;
  #consoleFeed: LiveFeed | undefined;
  #endpoints: HubEndpoints | undefined;
  #starting: Promise<HubEndpoints> | undefined;

  constructor(config: HubConfig, logger?: Logger, options: HubOptions = {}) {
    this.config = Object.freeze({ ...config });
    this.#log = componentLogger('hub', logger);
    this.#options = options;
  }

  /** The database, once started. */
  get db(): Database {
    if (!this.#db) throw new Error('hub is not started');
    return this.#db;
  }

  /** GB/T 28181 access, once started. */
  get video(): VideoService {
    if (!this.#video) throw new Error('hub is not started');
    return this.#video;
  }

  /** Origin of the HTTP-FLV relay for the console's Content-Security-Policy; none while media is off. */
  #mediaOrigins(): string[] {
    try {
      return this.#video ? [new URL(this.#video.relay.flvUrl('live', 'console')).origin] : [];
    } catch {
      // CS_ERR_VIDEO_MEDIA_DISABLED: no relay, nothing to allow.
      return [];
    }
  }

  /** The sensor ledger, once started. */
  get ledger(): LedgerService {
    if (!this.#ledger) throw new Error('hub is not started');
    return this.#ledger;
  }

  /** The runtime's admission by the ledger, once started. */
  get admission(): LedgerAdmission {
    if (!this.#admission) throw new Error('hub is not started');
    return this.#admission;
  }

  /** Endpoints, once started. */
  get endpoints(): HubEndpoints {
    if (!this.#endpoints) throw new Error('hub is not started');
    return this.#endpoints;
  }

  /** Starts every component; idempotent. */
  start(): Promise<HubEndpoints> {
    this.#starting ??= this.#start().catch(async (err: unknown) => {
      this.#log.error({ err: errorMessage(err) }, 'hub failed to start; stopping what started');
      await this.stop();
      this.#starting = undefined;
      throw err;
    });
    return this.#starting;
  }

  async #start(): Promise<HubEndpoints> {
    const c = this.config;
    const startedAt = Date.now();
    if (!c.databaseUrl) {
      this.#lock = new DataDirLock(c.dataDir);
      await this.#lock.acquire();
    }
    const adminToken = await resolveAdminToken(c.adminToken, c.dataDir);
    const db = await openDatabase({ databaseUrl: c.databaseUrl, dataDir: c.dataDir, logger: this.#log });
    this.#db = db;
    await migrate(db, this.#log);
    const audit = new AuditLog({
      db,
      logger: this.#log,
      failures: this.metrics.registry.register(
        new Counter('citysense_audit_write_failures_total', 'Audit events that could not be stored'),
      ),
    });
    this.#audit = audit;
    const directory = new UserDirectory(db);
    const apiTokens = new ApiTokenStore(db);
    const auth = new AuthService({
      directory,
      tokens: apiTokens,
      secret: await resolveJwtSecret(c.dataDir),
      issuer: c.hubId,
      logger: this.#log,
    });
    this.#maintenance = new StorageMaintenance(db, {
      intervalMs: c.maintenanceIntervalMs,
      logger: this.#log,
    });
    await this.#maintenance.start();

    const registry = new NodeRegistry(db, c.groupId);
    await registry.load();
    const tokens = new TokenStore(db);
    const enrollment = new EnrollmentService(db, tokens, registry, c.hubId, this.#log);
    const store = new ReadingStore(db);
    if (!isSignatureAlgorithm(c.centreKeyAlgorithm))
      throw new CitysenseError(
        'CS_ERR_CONFIG_INVALID',
        `centreKeyAlgorithm must be ed25519 or sm2-sm3, not ${c.centreKeyAlgorithm}`,
      );
    this.#algorithms = new AlgorithmCentre({
      db,
      dataDir: c.dataDir,
      artifactDir: c.artifactDir ?? join(c.dataDir, 'artifacts'),
      maxPackageBytes: c.algorithmMaxPackageBytes,
      keyAlgorithm: c.centreKeyAlgorithm,
      tester: this.#options.adaptationTester ?? runAdaptationTest,
      logger: this.#log,
    });
    await this.#algorithms.start();
    const centre = this.#algorithms;
    this.#ledger = new LedgerService({
      db,
      signingKey: () => centre.centreKey,
      centreCode: c.ledger.centreCode ?? c.sip.id.slice(0, 8),
      duplicateRadiusM: c.ledger.duplicateRadiusM,
      importMaxRows: c.ledger.importMaxRows,
      // 001 Art. 45: only devices of an approved joint-review project may go live.
      reviewed: (code) => hasApprovedProject(db, code),
      logger: this.#log,
    });
    if (c.ledger.webhookUrl) {
      this.#ledgerWebhook = new LedgerWebhook({
        db,
        ledger: this.#ledger,
        url: c.ledger.webhookUrl,
        backoffMs: c.ledger.webhookBackoffMs,
        maxBackoffMs: c.ledger.webhookMaxBackoffMs,
        logger: this.#log,
      });
      await this.#ledgerWebhook.start();
    }
    this.#refusals = new RefusalLog({ db, logger: this.#log });
    const admission = new LedgerAdmission({
      ledger: this.#ledger,
      refusals: this.#refusals,
      enforce: c.ledger.enforce,
      logger: this.#log,
    });
    this.#admission = admission;
    await admission.start();
    this.metrics.registry.register(
      new Gauge(
        'citysense_ledger_refused_total',
        'Data refused by the ledger since start, per channel and code',
        () => admission.totals().map(({ channel, code, count }) => [{ channel, code }, count]),
      ),
    );
    const analytics = new AnalyticsStore(db);
    // Before the Sparkplug host: it evaluates rules on every ingested value.
    const alarms = new AlarmService({
      db,
      metrics: this.metrics.registry,
      hubId: c.hubId,
      webhookUrl: c.alarms.webhookUrl,
      webhookSecret: await resolveAlarmWebhookSecret(c.alarms.webhookSecret, c.dataDir),
      webhookBackoffMs: c.alarms.webhookBackoffMs,
      webhookMaxBackoffMs: c.alarms.webhookMaxBackoffMs,
      webhookMaxAttempts: c.alarms.webhookMaxAttempts,
      webhookTimeoutMs: c.alarms.webhookTimeoutMs,
      tickMs: c.alarms.tickMs,
      flushMs: c.alarms.flushMs,
      logger: this.#log,
    });
    this.#alarms = alarms;
    await alarms.start();

    let bus: MessageBus;
    if (c.mqttUrl) {
      this.#external = new ExternalBus({
        url: c.mqttUrl,
        shareGroup: `citysense-${c.groupId}`,
        will: {
          topic: `spBv1.0/STATE/${c.hubId}`,
          payload: JSON.stringify({ online: false, timestamp: Date.now() }),
        },
        logger: this.#log,
      });
      await this.#external.start();
      bus = this.#external;
    } else {
      // With the embedded broker no node can be connected before we are: start from offline.
      await registry.markAllOffline();
      this.#broker = new EmbeddedBroker({
        host: c.mqttHost,
        port: c.mqttPort,
        groupId: c.groupId,
        hubUsername: c.hubId,
        adminToken: adminToken.token,
        maxPayloadBytes: c.maxPayloadBytes,
        credentials: registry,
        metrics: this.metrics,
        logger: this.#log,
      });
      await this.#broker.start();
      bus = this.#broker;
    }

    let host: SparkplugHost | undefined;
    const writer = new BatchWriter({
      store,
      analytics,
      metrics: this.metrics,
      maxBatchRows: c.ingestBatchRows,
      flushIntervalMs: c.ingestFlushMs,
      maxBufferedRows: c.ingestBufferRows,
      onCommit: (committed) => host?.acknowledge(committed),
      logger: this.#log,
    });
    this.#writer = writer;
    host = new SparkplugHost({
      hostId: c.hubId,
      groupId: c.groupId,
      bus,
      registry,
      store,
      writer,
      metrics: this.metrics,
      checkSeq: bus.mode === 'embedded',
      admission,
      observer: alarms,
      logger: this.#log,
    });
    this.#host = host;
    this.#registerGauges(host, bus, writer);
    await host.start();
    this.#deployments = new DeploymentService({
      db,
      centre: this.#algorithms,
      registry,
      // Sparkplug 3.0 §6.4.7: an NCMD tells the node to fetch its assignments now.
      notify: (nodeId, revision) =>
        host.sendNodeCommand(nodeId, [
          { name: ASSIGNMENTS_REVISION, datatype: DataType.Int64, value: revision },
        ]),
      checkIntervalMs: c.deploymentCheckIntervalMs,
      logger: this.#log,
    });
    await this.#deployments.start();
    this.#operations = new OperationService({
      db,
      audit,
      notify: (nodeId, revision) =>
        host.sendNodeCommand(nodeId, [
          { name: OPERATIONS_REVISION, datatype: DataType.Int64, value: revision },
        ]),
      logger: this.#log,
    });
    await this.#operations.start();
    this.#otaArtifacts = new OtaArtifactService({
      db,
      artifactDir: c.artifactDir ?? join(c.dataDir, 'artifacts'),
      maxArtifactBytes: c.otaMaxArtifactBytes,
      // OTA artifacts are signed by the same trusted signers as algorithm packages.
      trustedKeys: () => centre.signers.trustedKeys(),
      logger: this.#log,
    });
    await this.#otaArtifacts.start();
    this.#campaigns = new CampaignService({
      db,
      artifacts: this.#otaArtifacts,
      registry,
      trustedKeys: () => centre.signers.trustedKeys(),
      // Sparkplug 3.0 §6.4.7: an NCMD tells the node to fetch its OTA document now.
      notify: (nodeId, revision) =>
        host.sendNodeCommand(nodeId, [{ name: OTA_REVISION, datatype: DataType.Int64, value: revision }]),
      audit,
      checkIntervalMs: c.otaCheckIntervalMs,
      logger: this.#log,
    });
    await this.#campaigns.start();
    registerOtaGauges(this.metrics.registry, this.#campaigns);
    const videoStore = new VideoStore(db);
    this.#video = new VideoService({
      store: videoStore,
      sip: c.sip,
      media: c.media,
      ledger: admission,
      logger: this.#log,
    });
    await this.#video.start();
    this.#registerVideoGauges(this.#video);

    const http = await createHttpServer({
      authenticateUser: (bearer) => auth.authenticate(bearer),
      onAudit: (event) => audit.recordHttp(event),
      adminToken: adminToken.token,
      logger: this.#log,
      version: HUB_VERSION,
      // verify() re-reads a cached credential after a few seconds: a box replaced through another replica is refused here too.
      authenticateNode: (nodeId, password) => registry.verify(nodeId, password),
    });
    this.#http = http;
    const mqttPort = this.#broker?.port ?? c.mqttPort;
    await opsRoutes(http, {
      db,
      bus,
      registry: this.metrics.registry,
      version: HUB_VERSION,
      startedAt,
      onlineNodes: () => host.onlineNodes(),
    });
    await registryRoutes(http, {
      tokens,
      registry,
      enrollment,
      host,
      store,
      bus,
      audit,
      publicMqttUrl: c.publicMqttUrl ?? null,
      mqttPort,
    });
    await telemetryRoutes(http, { store });
    await algorithmRoutes(http, { centre: this.#algorithms });
    await deploymentRoutes(http, { deployments: this.#deployments });
    await operationRoutes(http, { operations: this.#operations });
    await otaRoutes(http, { artifacts: this.#otaArtifacts, campaigns: this.#campaigns });
    await analyticsRoutes(http, { store: analytics });
    await videoRoutes(http, { service: this.#video, store: videoStore });
    await liveRoutes(http, { service: this.#video });
    await authRoutes(http, { auth, directory, tokens: apiTokens, audit });
    await auditRoutes(http, { audit });
    await ledgerRoutes(http, { ledger: this.#ledger, webhook: this.#ledgerWebhook, audit });
    await refusalRoutes(http, { ledger: this.#ledger, admission, refusals: this.#refusals });
    await reviewRoutes(http, {
      review: new ReviewService({ store: new ReviewStore(db), ledger: this.#ledger, logger: this.#log }),
      audit,
    });
    await carrierRoutes(http, { store: new CarrierStore(db), audit });
    const catalogue = new CatalogueService({
      db,
      ledger: this.#ledger,
      readings: store,
      analytics,
      logger: this.#log,
    });
    await catalogue.start();
    await catalogueRoutes(http, { catalogue, audit });
    await alarmRoutes(http, { alarms });
    const deployments = this.#deployments;
    this.#consoleFeed = await mountConsole(http, {
      config: c.console,
      hubId: c.hubId,
      version: HUB_VERSION,
      sources: {
        nodes: async () => (await registry.list()).map((n) => ({ id: n.id, online: n.online })),
        openAlarms: () => alarms.list({ state: 'open', limit: 10_000 }),
        rollouts: () => deployments.list({ limit: 50 }),
        readingsCommitted: () => this.metrics.readingsCommitted.get(),
      },
      logger: this.#log,
      mediaOrigins: () => this.#mediaOrigins(),
    });
    await http.listen({ host: c.httpHost, port: c.httpPort });
    this.#broker?.attachWebSocket(http.server);
    const address = http.server.address();
    const httpPort = address && typeof address === 'object' ? address.port : c.httpPort;
    const shownHost = c.httpHost === '0.0.0.0' ? 'localhost' : c.httpHost;
    this.#endpoints = {
      httpUrl: `http://${shownHost}:${httpPort}`,
      mqttUrl: c.mqttUrl ?? `mqtt://${c.mqttHost === '0.0.0.0' ? 'localhost' : c.mqttHost}:${mqttPort}`,
      adminToken,
    };
    this.#log.info(
      { http: this.#endpoints.httpUrl, mqtt: this.#endpoints.mqttUrl, db: db.features.engine },
      'hub started',
    );
    return this.#endpoints;
  }

  #registerGauges(host: SparkplugHost, bus: MessageBus, writer: BatchWriter): void {
    const r = this.metrics.registry;
    r.register(
      new Gauge('citysense_nodes_online', 'Nodes with a live Sparkplug session', () => [
        [undefined, host.onlineNodes()],
      ]),
    );
    r.register(
      new Gauge('citysense_mqtt_clients', 'Connected MQTT clients', () => [
        [undefined, bus.connectedClients()],
      ]),
    );
    r.register(
      new Gauge('citysense_ingest_buffered_rows', 'Rows waiting for the database', () => [
        [undefined, writer.bufferedRows],
      ]),
    );
    const perNode = (pick: (h: LatestHealth) => number | undefined) => () =>
      [...host.latestHealth()].flatMap(([node, h]): Array<[Record<string, string>, number]> => {
        const v = pick(h);
        return v === undefined ? [] : [[{ node }, v]];
      });
    r.register(
      new Gauge(
        'citysense_node_spool_bytes',
        'Spool bytes reported by each node',
        perNode((h) => h.spoolBytes),
      ),
    );
    r.register(
      new Gauge(
        'citysense_node_spool_records',
        'Spool records reported by each node',
        perNode((h) => h.spoolRecords),
      ),
    );
    r.register(
      new Gauge(
        'citysense_node_spool_age_seconds',
        'Age of the oldest spooled record per node',
        perNode((h) => h.spoolAgeS),
      ),
    );
    r.register(
      new Gauge(
        'citysense_node_dropped_records',
        'Records dropped by full spools per node',
        perNode((h) => h.droppedRecords),
      ),
    );
  }

  #registerVideoGauges(video: VideoService): void {
    const r = this.metrics.registry;
    const stat = (pick: (s: ReturnType<VideoService['platform']['stats']>) => number) => () =>
      video.enabled ? [[undefined, pick(video.platform.stats())] as [undefined, number]] : [];
    r.register(
      new Gauge(
        'citysense_video_devices',
        'GB/T 28181 devices registered',
        stat((s) => s.devices),
      ),
    );
    r.register(
      new Gauge(
        'citysense_video_devices_online',
        'GB/T 28181 devices online',
        stat((s) => s.online),
      ),
    );
    r.register(
      new Gauge(
        'citysense_video_keepalives',
        'GB/T 28181 keepalives received since start',
        stat((s) => s.keepalives),
      ),
    );
    r.register(
      new Gauge(
        'citysense_video_sip_malformed',
        'SIP messages refused as malformed since start',
        stat((s) => s.sip.malformed),
      ),
    );
  }

  /** Stops in reverse order; idempotent; flushes what was accepted. */
  async stop(): Promise<void> {
    const steps: Array<[string, () => Promise<void> | undefined]> = [
      // Live streams end first, so that closing HTTP only waits for ordinary requests.
      ['console feed', () => this.#consoleFeed?.stop()],
      ['http', () => (this.#http ? closeHttpServer(this.#http) : undefined)],
      ['deployments', () => this.#deployments?.stop()],
      ['operations', () => this.#operations?.stop()],
      ['ota campaigns', () => this.#campaigns?.stop()],
      ['ota artifacts', () => this.#otaArtifacts?.stop()],
      ['video', () => this.#video?.stop()],
      ['sparkplug host', () => this.#host?.stop()],
      ['batch writer', () => this.#writer?.stop()],
      ['alarms', () => this.#alarms?.stop()],
      ['ledger admission', () => this.#admission?.stop()],
      ['ledger refusals', () => this.#refusals?.stop()],
      ['ledger webhook', () => this.#ledgerWebhook?.stop()],
      ['algorithm centre', () => this.#algorithms?.stop()],
      ['mqtt', () => this.#broker?.stop() ?? this.#external?.stop()],
      ['maintenance', () => this.#maintenance?.stop()],
      ['audit', () => this.#audit?.stop()],
      ['database', () => this.#db?.close()],
      ['data dir lock', () => this.#lock?.release()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.#log.warn({ component: name, err: errorMessage(err) }, 'error while stopping');
      }
    }
    this.#http = undefined;
    this.#consoleFeed = undefined;
    this.#host = undefined;
    this.#writer = undefined;
    this.#algorithms = undefined;
    this.#ledger = undefined;
    this.#ledgerWebhook = undefined;
    this.#admission = undefined;
    this.#refusals = undefined;
    this.#alarms = undefined;
    this.#deployments = undefined;
    this.#operations = undefined;
    this.#campaigns = undefined;
    this.#otaArtifacts = undefined;
    this.#broker = undefined;
    this.#external = undefined;
    this.#maintenance = undefined;
    this.#db = undefined;
    this.#lock = undefined;
    this.#audit = undefined;
    this.#endpoints = undefined;
    this.#starting = undefined;
  }
}
