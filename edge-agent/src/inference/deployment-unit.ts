/**
 * One assignment on this node, from first sight to withdrawal: fetch the package, verify
 * it, load and warm up the model, run the sources on it, and report every step. A new
 * version is prepared next to the running one and swapped in without stopping the
 * sources; if it fails, the running version carries on.
 */

import type { AlgorithmPackage } from '@citysense/algorithms';
import { Detector, packageLabels } from '@citysense/algorithms';
import type { DeviceDescriptor, Reading } from '@citysense/device-drivers';
import {
  type AlgorithmAssignment,
  type AssignmentState,
  type AssignmentStatus,
  CitysenseError,
  EDGE_ALERT_METRIC,
  type EdgeAlert,
  errorMessage,
  type InferenceStats,
  type Logger,
  VIDEO_ANALYTICS_METRIC,
  type VideoAnalyticsFrame,
  type VideoSource,
} from '@citysense/protocol';
import { type BackoffOptions, backoffDelay } from '../backoff.ts';
import { AlertRuleEngine, parseAlertRules } from '../rules/alert-rules.ts';
import { Wakeup } from '../uplink/wakeup.ts';
import { alertReading, analyticsReading, toAnalyticsFrame } from './analytics-frame.ts';
import { codeOf, isRetryable, PACKAGE_DIGEST } from './errors.ts';
import type { HubClient } from './hub-client.ts';
import { InferenceStatsWindow } from './inference-stats.ts';
import { type LoadedModel, ModelSlot, type SlotDetection } from './model-slot.ts';
import type { EnsureResult, PackageCache } from './package-cache.ts';
import { SourceRunner, type SourceRunStatus } from './source-runner.ts';
import type { StatusReporter } from './status-reporter.ts';
import { verifyPackage } from './verify-package.ts';

/** Device kind of a video source in births. */
export const VIDEO_ANALYTICS_DEVICE_KIND = 'video-analytics';

/** What the hub wants for one deployment, with the document it came in. */
export interface DesiredAssignment {
  assignment: AlgorithmAssignment;
  revision: number;
  trustedKeys: readonly string[];
}

/** One analysed frame, as the runtime announces it (tests, local displays). */
export interface AnalysedFrame {
  deploymentId: string;
  /** Index of the frame in its source's sequence (a gap = dropped frames). */
  index: number;
  frame: VideoAnalyticsFrame;
}

/** One deployment in the agent status. */
export interface DeploymentStatus {
  deploymentId: string;
  algorithmId: string;
  /** The version the hub assigns. */
  version: string;
  /** The version running now; null before the first one is active. */
  activeVersion: string | null;
  state: AssignmentState;
  progress: number | null;
  failure: { code: string; reason: string; version: string } | null;
  stats: InferenceStats;
  sources: SourceRunStatus[];
}

/** What every deployment shares, handed down by the runtime. */
export interface DeploymentContext {
  cache: PackageCache;
  client: Pick<HubClient, 'url' | 'authHeaders'>;
  reporter: Pick<StatusReporter, 'update' | 'forget'>;
  record: (readings: Reading[]) => void;
  intraOpNumThreads: number;
  executionProviders: string[];
  statsIntervalMs: number;
  backoff: BackoffOptions;
  logger: Logger;
  /** SHA-256 of every package some assignment wants (kept by cache retention). */
  inUse: () => ReadonlySet<string>;
  onDevicesChanged: () => void;
  onFrame: (frame: AnalysedFrame) => void;
  onStatus: (deploymentId: string, status: AssignmentStatus) => void;
  /** An alert a local rule raised (already recorded for the hub). */
  onAlert?: (alert: EdgeAlert) => void;
}

/** The rule engine of an assignment; rules the hub sent malformed are logged and left out. */
function alertEngineFor(assignment: AlgorithmAssignment, log: Logger): AlertRuleEngine {
  try {
    return new AlertRuleEngine(parseAlertRules(assignment.rules ?? []));
  } catch (err) {
    log.error({ code: codeOf(err), err: errorMessage(err) }, 'alert rules refused; running without them');
    return new AlertRuleEngine([]);
  }
}

/** Longest idle wait of the loop; it wakes on every change anyway. */
const IDLE_WAIT_MS = 60_000;
/** Download progress is reported when it moved this much, or after PROGRESS_EVERY_MS. */
const PROGRESS_STEP = 0.1;
const PROGRESS_EVERY_MS = 1000;

/** Where preparing a version failed; decides what makes a retry worthwhile. */
type Stage = 'download' | 'verify' | 'load';

interface Failure {
  code: string;
  reason: string;
  sha256: string;
  version: string;
  stage: Stage;
  revision: number;
  trustedKeys: string;
}

/** Runs one deployment. Constructors only assign; `start()` begins the work. */
export class DeploymentUnit {
  readonly #ctx: DeploymentContext;
  readonly #slot = new ModelSlot();
  readonly #runners = new Map<string, SourceRunner>();
  readonly #stats = new InferenceStatsWindow();
  readonly #wakeup = new Wakeup();
  readonly #controller = new AbortController();
  #id: string;
  #log: Logger;
  #desired: DesiredAssignment;
  #state: AssignmentState = 'queued';
  #progress: number | null = null;
  #failure: Failure | null = null;
  /** Aborts the preparation of a version the hub no longer wants. */
  #preparing: { sha256: string; controller: AbortController } | null = null;
  #loop: Promise<void> | null = null;
  #statsTimer: NodeJS.Timeout | null = null;
  #lastReportKey = '';
  #lastProgress = { value: -1, at: 0 };
  #stage: Stage = 'download';
  #alerts: AlertRuleEngine;

  constructor(desired: DesiredAssignment, ctx: DeploymentContext) {
    this.#ctx = ctx;
    this.#desired = desired;
    this.#id = desired.assignment.deploymentId;
    this.#log = ctx.logger.child({ deployment: this.#id, algorithm: desired.assignment.algorithmId });
    this.#alerts = alertEngineFor(desired.assignment, this.#log);
  }

  /** The deployment this unit reports as. */
  get deploymentId(): string {
    return this.#id;
  }

  /** The algorithm it runs. */
  get algorithmId(): string {
    return this.#desired.assignment.algorithmId;
  }

  /**
   * Takes over under another deployment id: the hub replaced this deployment with one of
   * the same algorithm, so the running model and sources carry on until the new version is in.
   */
  adopt(deploymentId: string): void {
    if (deploymentId === this.#id) return;
    this.#ctx.reporter.forget(this.#id);
    this.#log.info({ to: deploymentId }, 'deployment replaced; carrying on under the new one');
    this.#id = deploymentId;
    this.#log = this.#ctx.logger.child({ deployment: deploymentId, algorithm: this.algorithmId });
    this.#lastReportKey = '';
  }

  /** Sets what the hub wants now; a version no longer wanted stops being prepared. */
  setDesired(desired: DesiredAssignment): void {
    if (
      JSON.stringify(desired.assignment.rules ?? []) !== JSON.stringify(this.#desired.assignment.rules ?? [])
    )
      this.#alerts = alertEngineFor(desired.assignment, this.#log);
    this.#desired = desired;
    if (this.#preparing && this.#preparing.sha256 !== desired.assignment.sha256)
      this.#preparing.controller.abort();
    this.#wakeup.notify();
  }

  /** Starts working towards the desired state. Idempotent. */
  start(): void {
    if (this.#loop) return;
    this.#statsTimer = setInterval(() => this.#reportStats(), this.#ctx.statsIntervalMs);
    this.#loop = this.#run(this.#controller.signal).catch((err: unknown) => {
      this.#log.error({ err: errorMessage(err) }, 'deployment loop ended unexpectedly');
    });
  }

  /** Stops the sources, abandons any preparation and releases the model. Idempotent. */
  async stop(): Promise<void> {
    this.#controller.abort();
    this.#preparing?.controller.abort();
    this.#wakeup.notify();
    if (this.#statsTimer) clearInterval(this.#statsTimer);
    this.#statsTimer = null;
    await this.#loop;
    await Promise.all([...this.#runners.values()].map((r) => r.stop()));
    this.#runners.clear();
    await this.#slot.release();
  }

  /** One device per running source, for births. */
  devices(): DeviceDescriptor[] {
    return [...this.#runners.keys()].map((id) => ({
      id,
      kind: VIDEO_ANALYTICS_DEVICE_KIND,
      metrics: [
        { name: VIDEO_ANALYTICS_METRIC, type: 'bytes' as const },
        { name: EDGE_ALERT_METRIC, type: 'bytes' as const },
      ],
    }));
  }

  /** Where the deployment is. */
  status(): DeploymentStatus {
    const f = this.#failure;
    return {
      deploymentId: this.#id,
      algorithmId: this.algorithmId,
      version: this.#desired.assignment.version,
      activeVersion: this.#slot.current?.version ?? null,
      state: this.#state,
      progress: this.#progress,
      failure: f && { code: f.code, reason: f.reason, version: f.version },
      stats: this.#stats.snapshot(),
      sources: [...this.#runners.values()].map((r) => r.status()),
    };
  }

  // ---- the loop --------------------------------------------------------------

  async #run(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      const want = this.#desired;
      const { sha256, sources } = want.assignment;
      const active = this.#slot.current;
      if (active?.sha256 === sha256) {
        this.#failure = null;
        await this.#applySources(sources);
        this.#setState('active');
        await this.#wakeup.wait(IDLE_WAIT_MS);
        continue;
      }
      const f = this.#failure;
      if (f && f.sha256 === sha256 && !worthRetrying(f, want)) {
        // The previous version (if any) keeps running until the hub changes something that matters.
        await this.#applySources(sources);
        this.#setState('failed'); // tells the hub which revision this verdict stands for
        await this.#wakeup.wait(IDLE_WAIT_MS);
        continue;
      }
      try {
        await this.#upgrade(want, signal);
        attempt = 0;
      } catch (err) {
        if (signal.aborted) break;
        if (this.#desired.assignment.sha256 !== sha256) continue; // superseded while preparing
        if (isRetryable(err)) {
          const delayMs = backoffDelay(attempt++, this.#ctx.backoff) + this.#ctx.backoff.initialMs;
          this.#log.warn(
            { code: codeOf(err), err: errorMessage(err), delayMs },
            'preparing the model failed; retrying',
          );
          await this.#wakeup.wait(delayMs);
          continue;
        }
        this.#fail(want, err);
      }
    }
  }

  /** Download → verify → load → warm up → swap. Throws on failure; the running model stays. */
  async #upgrade(want: DesiredAssignment, signal: AbortSignal): Promise<void> {
    const a = want.assignment;
    const controller = new AbortController();
    this.#preparing = { sha256: a.sha256, controller };
    const prepSignal = AbortSignal.any([signal, controller.signal]);
    try {
      await this.#applySources(a.sources);
      this.#setState('queued');
      this.#stage = 'download';
      const t0 = performance.now();
      const download = await this.#download(want, prepSignal);
      const t1 = performance.now();
      this.#setState('verifying');
      this.#stage = 'verify';
      let pkg: AlgorithmPackage;
      try {
        pkg = verifyPackage(await this.#ctx.cache.read(a.sha256), a, want.trustedKeys);
      } catch (err) {
        // A cached file that no longer matches its name was damaged on disk: never keep it.
        if (download.cached && codeOf(err) === PACKAGE_DIGEST) await this.#ctx.cache.evict(a.sha256);
        else await this.#ctx.cache.discard(a.sha256);
        throw err;
      }
      const t2 = performance.now();
      this.#setState('loading');
      this.#stage = 'load';
      let model: LoadedModel;
      try {
        model = await this.#load(pkg, a);
      } catch (err) {
        await this.#ctx.cache.discard(a.sha256);
        throw err;
      }
      const t3 = performance.now();
      if (prepSignal.aborted) {
        await model.detector.release();
        throw new CitysenseError('CS_ERR_ABORTED', 'the hub no longer wants this version', 499);
      }
      this.#stats.reset();
      const previous = this.#slot.current;
      // From here new frames go to the new model; frames already on the old one finish there.
      const released = this.#slot.swap(model);
      await this.#applySources(a.sources);
      await released;
      const t4 = performance.now();
      await this.#ctx.cache.markActive(
        a.algorithmId,
        { version: a.version, sha256: a.sha256 },
        this.#ctx.inUse(),
      );
      this.#failure = null;
      this.#setState('active');
      this.#log.info(
        {
          version: a.version,
          previous: previous?.version ?? null,
          ...downloadFigures(download, a.bytes, t1 - t0),
          verifyMs: round(t2 - t1),
          loadMs: round(t3 - t2),
          releaseOldMs: round(t4 - t3),
        },
        previous ? 'model swapped' : 'model active',
      );
    } finally {
      this.#preparing = null;
    }
  }

  async #download(want: DesiredAssignment, signal: AbortSignal): Promise<EnsureResult> {
    const a = want.assignment;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#ctx.cache.ensure(
          {
            sha256: a.sha256,
            bytes: a.bytes,
            url: this.#ctx.client.url(a.packagePath),
            headers: this.#ctx.client.authHeaders(),
          },
          {
            signal,
            onDownloadStart: () => this.#setState('downloading'),
            onProgress: (received, total) => this.#onProgress(received / total),
          },
        );
      } catch (err) {
        if (signal.aborted || !isRetryable(err)) throw err;
        const delayMs = backoffDelay(attempt, this.#ctx.backoff) + this.#ctx.backoff.initialMs;
        this.#log.warn(
          { code: codeOf(err), err: errorMessage(err), delayMs },
          'package download interrupted; resuming',
        );
        await this.#wakeup.wait(delayMs);
        signal.throwIfAborted();
      }
    }
  }

  async #load(pkg: AlgorithmPackage, a: AlgorithmAssignment): Promise<LoadedModel> {
    const { manifest } = pkg;
    const model = pkg.parts.get(manifest.model);
    if (!model)
      throw new CitysenseError('CS_ERR_ALGO_PART_MISSING', `package lacks its model ${manifest.model}`, 400);
    const detector = await Detector.load(model, manifest, packageLabels(pkg), {
      intraOpNumThreads: this.#ctx.intraOpNumThreads,
      executionProviders: this.#ctx.executionProviders,
      logger: this.#log,
    });
    try {
      await detector.warmUp();
    } catch (err) {
      await detector.release();
      throw err;
    }
    return { algorithmId: a.algorithmId, version: a.version, sha256: a.sha256, detector };
  }

  #fail(want: DesiredAssignment, err: unknown): void {
    const a = want.assignment;
    const code = codeOf(err).slice(0, 64);
    const reason = errorMessage(err).slice(0, 2000);
    this.#failure = {
      code,
      reason,
      sha256: a.sha256,
      version: a.version,
      stage: this.#stage,
      revision: want.revision,
      trustedKeys: keysOf(want),
    };
    this.#setState('failed');
    this.#log.error(
      { code, err: reason, version: a.version, activeVersion: this.#slot.current?.version ?? null },
      'assignment failed; the running version (if any) carries on',
    );
  }

  // ---- sources -----------------------------------------------------------------

  /** Starts, restarts (url or fps changed) and stops runners to match `sources`; only once a model is active. */
  async #applySources(sources: readonly VideoSource[]): Promise<void> {
    if (!this.#slot.current || this.#controller.signal.aborted) return;
    const before = [...this.#runners.keys()].join('\n');
    const wanted = new Map(sources.map((s) => [s.id, s]));
    for (const [id, runner] of this.#runners) {
      const s = wanted.get(id);
      if (s && s.url === runner.source.url && s.fps === runner.source.fps) continue;
      this.#runners.delete(id);
      await runner.stop();
    }
    for (const s of sources) {
      if (this.#runners.has(s.id)) continue;
      const runner = this.#runner(s);
      this.#runners.set(s.id, runner);
      runner.start();
    }
    if ([...this.#runners.keys()].join('\n') !== before) this.#ctx.onDevicesChanged();
  }

  #runner(source: VideoSource): SourceRunner {
    return new SourceRunner({
      source,
      detect: (image) => this.#slot.detect(image),
      onResult: (frame, result) => this.#onResult(source.id, frame.index, frame.time, result),
      onError: () => this.#stats.recordError(),
      onDropped: (count) => this.#stats.recordDropped(count),
      backoff: this.#ctx.backoff,
      logger: this.#log,
    });
  }

  #onResult(source: string, index: number, time: number, { model, detection }: SlotDetection): void {
    this.#stats.recordFrame(detection.timings.inferMs);
    const frame = toAnalyticsFrame(detection, {
      source,
      time,
      algorithmId: model.algorithmId,
      algorithmVersion: model.version,
    });
    try {
      this.#ctx.record([analyticsReading(frame)]);
    } catch (err) {
      this.#stats.recordError();
      this.#log.warn({ code: codeOf(err), err: errorMessage(err), source }, 'analytics frame not recorded');
      return;
    }
    this.#ctx.onFrame({ deploymentId: this.#id, index, frame });
    // Alert on the device: the rule fires here, within the frame, whether or not the hub is reachable.
    for (const alert of this.#alerts.evaluate(frame)) {
      this.#log.warn(
        { rule: alert.ruleId, severity: alert.severity, source, count: alert.count },
        `edge alert: ${alert.message}`,
      );
      try {
        this.#ctx.record([alertReading(alert)]);
      } catch (err) {
        this.#log.warn({ code: codeOf(err), err: errorMessage(err), source }, 'edge alert not recorded');
      }
      this.#ctx.onAlert?.(alert);
    }
  }

  // ---- status ------------------------------------------------------------------

  #setState(state: AssignmentState): void {
    this.#state = state;
    if (state !== 'downloading') this.#progress = null;
    const key = [
      state,
      this.#desired.revision,
      this.#desired.assignment.sha256,
      this.#slot.current?.version,
    ].join();
    if (key === this.#lastReportKey) return;
    this.#lastReportKey = key;
    this.#lastProgress = { value: -1, at: Date.now() };
    this.#report(false);
  }

  #onProgress(progress: number): void {
    this.#progress = progress;
    const now = Date.now();
    const last = this.#lastProgress;
    if (progress < 1 && progress - last.value < PROGRESS_STEP && now - last.at < PROGRESS_EVERY_MS) return;
    this.#lastProgress = { value: progress, at: now };
    this.#report(false);
  }

  #reportStats(): void {
    if (this.#state === 'active' && this.#slot.current) this.#report(true);
  }

  #report(endStatsWindow: boolean): void {
    // A withdrawn deployment says nothing more: the hub no longer expects it.
    if (this.#controller.signal.aborted) return;
    const active = this.#slot.current;
    const status: AssignmentStatus = { revision: this.#desired.revision, state: this.#state };
    if (this.#state === 'downloading' && this.#progress !== null) status.progress = round3(this.#progress);
    if (this.#state === 'failed' && this.#failure) {
      status.code = this.#failure.code;
      status.reason = this.#failure.reason;
    }
    if (active) {
      status.activeVersion = active.version;
      status.stats = this.#stats.snapshot(Date.now(), endStatsWindow);
    }
    this.#ctx.reporter.update(this.#id, status);
    this.#ctx.onStatus(this.#id, status);
  }
}

/**
 * Whether a failed version is worth another try: a refused download or a failed load when
 * the hub publishes a new revision (a grant, a fix, another node size), a package that
 * failed verification only when the trusted keys change (the same bytes fail the same way).
 */
function worthRetrying(f: Failure, want: DesiredAssignment): boolean {
  if (f.stage === 'verify') return f.trustedKeys !== keysOf(want);
  return f.revision !== want.revision;
}

function keysOf(want: DesiredAssignment): string {
  return [...want.trustedKeys].sort().join('\n');
}

function downloadFigures(d: EnsureResult, bytes: number, ms: number): Record<string, number | boolean> {
  if (d.cached) return { cached: true };
  const seconds = Math.max(0.001, ms / 1000);
  return {
    cached: false,
    bytes,
    resumedFrom: d.resumedFrom,
    downloadMs: round(ms),
    downloadMiBps: round(d.fetched / 1024 / 1024 / seconds),
  };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
