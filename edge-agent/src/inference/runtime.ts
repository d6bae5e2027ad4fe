/**
 * The agent's inference runtime: keeps the node's algorithm assignments in sync with the
 * hub and runs them (deployment-unit.ts), feeding analytics frames into the agent's
 * recorder, its source devices into births, and status reports back to the hub.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { DeviceDescriptor, MetricType, Reading } from '@citysense/device-drivers';
import {
  type AssignmentStatus,
  type AssignmentsDocument,
  componentLogger,
  EDGE_ALERT_METRIC,
  type EdgeAlert,
  errorMessage,
  type Logger,
  rootLogger,
  VIDEO_ANALYTICS_METRIC,
} from '@citysense/protocol';
import type { BackoffOptions } from '../backoff.ts';
import { AssignmentSync, type AssignmentSyncStatus } from './assignment-sync.ts';
import {
  type AnalysedFrame,
  type DeploymentContext,
  type DeploymentStatus,
  DeploymentUnit,
} from './deployment-unit.ts';
import { HubClient, type HubCredentials } from './hub-client.ts';
import { type LocalPackageConfig, type LocalPackageStatus, LocalPackages } from './local-packages.ts';
import { type CachedVersion, PackageCache } from './package-cache.ts';
import { StatusReporter, type StatusReporterStatus } from './status-reporter.ts';

/** Options of the runtime (the agent maps `config.inference` and the node identity onto these). */
export interface InferenceRuntimeOptions {
  hub: HubCredentials;
  /** The agent's state dir; packages go to `<stateDir>/models/`. */
  stateDir: string;
  pollIntervalMs: number;
  statsIntervalMs: number;
  maxParallelDownloads: number;
  intraOpNumThreads: number;
  /** ONNX Runtime execution providers for every model; default ['cpu']. */
  executionProviders?: string[];
  /** Packages imported on the gateway; each runs only once the centre has filed it. */
  localPackages?: LocalPackageConfig[];
  /** Where analytics readings go: the agent's recorder (spool, store-and-forward). */
  record: (readings: Reading[]) => void;
  /** Retry delays of sources, downloads and status reports; default 1 s growing to 60 s. */
  backoff?: BackoffOptions | undefined;
  logger?: Logger | undefined;
}

/** Events of the runtime. */
export interface InferenceRuntimeEvents {
  /** The set of source devices changed: births must be published again. */
  devices: [devices: DeviceDescriptor[]];
  /** A frame was analysed and recorded. */
  frame: [frame: AnalysedFrame];
  /** A deployment's state changed (or a periodic stats report). */
  status: [deploymentId: string, status: AssignmentStatus];
  /** A local rule raised an alert (already recorded for the hub). */
  alert: [alert: EdgeAlert];
}

/** The runtime in the agent status. */
export interface InferenceRuntimeStatus {
  running: boolean;
  sync: AssignmentSyncStatus;
  reports: StatusReporterStatus;
  deployments: DeploymentStatus[];
  /** Cached versions per algorithm: [current, previous]. */
  cache: Readonly<Record<string, readonly CachedVersion[]>>;
  /** Packages imported on the gateway and whether the centre has filed them. */
  localPackages: LocalPackageStatus[];
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 60_000 };

/**
 * Owns the assignment sync loop, the package cache, the status reporter and one
 * DeploymentUnit per assignment. A new document is reconciled at once: new deployments
 * start, changed ones upgrade or roll back in place, withdrawn ones stop. A deployment
 * that replaces a withdrawn one of the same algorithm takes over its running model, so
 * the version change is a hot swap too.
 */
export class InferenceRuntime extends EventEmitter<InferenceRuntimeEvents> {
  readonly #o: InferenceRuntimeOptions;
  readonly #log: Logger;
  readonly #client: HubClient;
  readonly #cache: PackageCache;
  readonly #reporter: StatusReporter;
  readonly #sync: AssignmentSync;
  readonly #units = new Map<string, DeploymentUnit>();
  #document: AssignmentsDocument | null = null;
  #running = false;
  #devicesKey = '';
  /** Reconciliations run one after another. */
  #chain: Promise<void> = Promise.resolve();
  readonly #local: LocalPackages;
  /** Aborts a local-package check in flight when the runtime stops. */
  #localSignal = new AbortController();

  constructor(o: InferenceRuntimeOptions) {
    super();
    this.#o = o;
    this.#log = o.logger ?? componentLogger('inference', rootLogger);
    this.#client = new HubClient({ credentials: o.hub });
    this.#cache = new PackageCache({
      dir: join(o.stateDir, 'models'),
      maxParallelDownloads: o.maxParallelDownloads,
      logger: this.#log,
    });
    this.#local = new LocalPackages({
      packages: o.localPackages ?? [],
      cache: this.#cache,
      client: this.#client,
      logger: this.#log,
    });
    this.#reporter = new StatusReporter({
      client: this.#client,
      backoff: o.backoff ?? DEFAULT_BACKOFF,
      logger: this.#log,
    });
    this.#sync = new AssignmentSync({
      client: this.#client,
      intervalMs: o.pollIntervalMs,
      onDocument: (doc) => this.#enqueue(doc),
      // Local packages are re-checked on every poll: the centre may have filed one since.
      deliverUnchanged: (o.localPackages?.length ?? 0) > 0,
      logger: this.#log,
    });
  }

  /** Opens the cache and starts syncing in the background; resolves without waiting for the hub. Idempotent. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#running) return;
    signal?.throwIfAborted();
    await this.#cache.open();
    this.#running = true;
    await this.#reporter.start();
    await this.#sync.start();
  }

  /** Stops polling, every deployment (sources, models) and the reporter. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#localSignal.abort();
    this.#localSignal = new AbortController();
    await this.#sync.stop();
    await this.#chain;
    const units = [...this.#units.values()];
    this.#units.clear();
    await Promise.all(units.map((u) => u.stop()));
    await this.#reporter.stop();
    // No 'devices' event: the agent is stopping, there is no session left to rebirth.
    this.#devicesKey = '';
  }

  /** Polls the hub now: NCMD ASSIGNMENTS_REVISION arrived, or the MQTT session came (back) up. */
  syncNow(reason: string): void {
    if (this.#running) this.#sync.syncNow(reason);
  }

  /** One device per running source (kind `video-analytics`, metric VIDEO_ANALYTICS_METRIC, bytes), for births. */
  devices(): DeviceDescriptor[] {
    const byId = new Map<string, DeviceDescriptor>();
    // A camera analysed by two algorithms is one device; its frames name the algorithm.
    for (const unit of this.#units.values()) for (const d of unit.devices()) byId.set(d.id, d);
    return [...byId.values()];
  }

  /** Declared type of a runtime metric; undefined for devices the runtime does not own. */
  metricType(device: string, metric: string): MetricType | undefined {
    if (metric !== VIDEO_ANALYTICS_METRIC && metric !== EDGE_ALERT_METRIC) return undefined;
    return this.devices().some((d) => d.id === device) ? 'bytes' : undefined;
  }

  /** Sync, reports, deployments and cache, for `agent.status()`. */
  status(): InferenceRuntimeStatus {
    return {
      running: this.#running,
      sync: this.#sync.status(),
      reports: this.#reporter.status(),
      deployments: [...this.#units.values()].map((u) => u.status()),
      localPackages: this.#local.status(),
      cache: this.#cache.versions(),
    };
  }

  #enqueue(doc: AssignmentsDocument): void {
    this.#chain = this.#chain
      .then(() => this.#reconcile(doc))
      .catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'applying assignments failed'));
  }

  async #reconcile(hubDoc: AssignmentsDocument): Promise<void> {
    if (!this.#running) return;
    // Filed local packages run like assignments, unless the hub assigns the same algorithm.
    const assigned = new Set(hubDoc.assignments.map((a) => a.algorithmId));
    const local = (await this.#local.assignments(this.#localSignal.signal)).filter(
      (a) => !assigned.has(a.algorithmId),
    );
    const doc = { ...hubDoc, assignments: [...hubDoc.assignments, ...local] };
    this.#document = doc;
    const wanted = new Map(doc.assignments.map((a) => [a.deploymentId, a]));
    // Withdrawn deployments whose algorithm comes back under a new deployment hand over their model.
    const withdrawn = [...this.#units.values()].filter((u) => !wanted.has(u.deploymentId));
    for (const a of doc.assignments) {
      if (this.#units.has(a.deploymentId)) continue;
      const heir = withdrawn.findIndex((u) => u.algorithmId === a.algorithmId);
      const unit = withdrawn[heir];
      if (!unit) continue;
      withdrawn.splice(heir, 1);
      this.#units.delete(unit.deploymentId);
      unit.adopt(a.deploymentId);
      this.#units.set(a.deploymentId, unit);
    }
    for (const unit of withdrawn) {
      this.#log.info({ deployment: unit.deploymentId }, 'assignment withdrawn; stopping its sources');
      this.#units.delete(unit.deploymentId);
      this.#reporter.forget(unit.deploymentId);
      await unit.stop();
    }
    if (withdrawn.length > 0) this.#devicesChanged();
    for (const assignment of doc.assignments) {
      const desired = { assignment, revision: doc.revision, trustedKeys: doc.trustedKeys };
      const unit = this.#units.get(assignment.deploymentId);
      if (unit) unit.setDesired(desired);
      else {
        const created = new DeploymentUnit(desired, this.#context());
        this.#units.set(assignment.deploymentId, created);
        created.start();
      }
    }
    await this.#cache.prune(this.#inUse());
  }

  #inUse(): Set<string> {
    return new Set(this.#document?.assignments.map((a) => a.sha256) ?? []);
  }

  #context(): DeploymentContext {
    return {
      cache: this.#cache,
      client: this.#client,
      reporter: this.#reporter,
      record: this.#o.record,
      intraOpNumThreads: this.#o.intraOpNumThreads,
      executionProviders: this.#o.executionProviders ?? ['cpu'],
      statsIntervalMs: this.#o.statsIntervalMs,
      backoff: this.#o.backoff ?? DEFAULT_BACKOFF,
      logger: this.#log,
      inUse: () => this.#inUse(),
      onDevicesChanged: () => this.#devicesChanged(),
      onFrame: (frame) => this.emit('frame', frame),
      onAlert: (alert) => this.emit('alert', alert),
      onStatus: (id, status) => this.emit('status', id, status),
    };
  }

  #devicesChanged(): void {
    const devices = this.devices();
    const key = devices
      .map((d) => d.id)
      .sort()
      .join('\n');
    if (key === this.#devicesKey) return;
    this.#devicesKey = key;
    this.emit('devices', devices);
  }
}
