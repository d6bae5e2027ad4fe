/**
 * The agent's updater: keeps the node's software and firmware where the hub's OTA
 * document wants them (protocol/src/ota.ts). Per update: download with HTTP Range
 * (resumable, progress reported), verify signature and SHA-256 against the document's
 * trusted keys, check compatibility, write the inactive A/B slot, activate it on trial and
 * ask the host for a restart. After the restart it runs the trial's health check and
 * confirms or rolls back, and reports `healthy` or `rolled-back`; a corrupt, unsigned or
 * incompatible artifact is reported `failed` with its code and nothing changes.
 *
 * Final outcomes are kept in slots.json until the hub has taken them, so a report lost
 * in a restart or an outage is sent again.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { arch } from 'node:os';
import { join } from 'node:path';
import {
  assertCompatible,
  type BootloaderHook,
  bootDecision,
  DEFAULT_MAX_TRIAL_BOOTS,
  downloadRanged,
  extractPayload,
  type HealthSample,
  OTA_ERRORS,
  type OtaOutcome,
  type OtaTrial,
  runHealthCheck,
  SlotStore,
  trialDeadline,
  verifyArtifact,
} from '@citysense/firmware-ota';
import {
  CitysenseError,
  errorMessage,
  type Logger,
  OTA_TARGETS,
  type OtaAssignment,
  type OtaDocument,
  type OtaStatus,
  type OtaTarget,
} from '@citysense/protocol';
import { type BackoffOptions, backoffDelay } from '../backoff.ts';
import { BackgroundLoop } from '../inference/background-loop.ts';
import { codeOf } from '../inference/errors.ts';
import { StatusReporter, type StatusReporterStatus } from '../inference/status-reporter.ts';
import type { OtaClient } from './ota-client.ts';

/** Options of the updater. */
export interface OtaUpdaterOptions {
  stateDir: string;
  client: Pick<OtaClient, 'getDocument' | 'putStatus' | 'url' | 'authHeaders'>;
  /** Version of the running agent: the updater's own version and the agent target's factory version. */
  agentVersion: string;
  /** Version of the firmware the gateway shipped with (the firmware target's factory version). */
  firmwareVersion: string;
  /** Hardware model matched against a manifest's `hardware`. */
  hardwareModel?: string | undefined;
  /** True when `citysense agent --supervise` runs this agent: only then can it switch its own slot. */
  supervised: boolean;
  /** The agent slot this process was started from, as the supervisor says (`factory` = no slot). */
  runningSlot?: 'a' | 'b' | 'factory' | undefined;
  /** Boots a firmware slot on trial may take (the supervisor counts the agent's own). */
  maxBoots?: number | undefined;
  pollIntervalMs: number;
  /** How often the health check samples the agent, ms; default 500. */
  healthCheckIntervalMs?: number | undefined;
  /** Samples the running agent for the health check. */
  probe: () => HealthSample;
  /** Switches the firmware slot on real hardware; absent on the simulated gateway. */
  bootloader?: BootloaderHook | undefined;
  /** Asks the host to stop cleanly (spool flushed) and start again in the now active slot. */
  requestRestart: (reason: string) => void;
  backoff: BackoffOptions;
  /** Clock of the health check deadline, ms since the epoch; defaults to Date.now (tests move it on). */
  clock?: (() => number) | undefined;
  /** Free-space probe for the slot stores (tests). */
  freeBytes?: ((dir: string) => Promise<number>) | undefined;
  logger: Logger;
}

/** One target as the agent status shows it. */
export interface OtaTargetStatus {
  runningVersion: string;
  /** Slot that runs; null = factory install. */
  slot: 'a' | 'b' | null;
  trial: OtaTrial | null;
}

/** What the updater reports in the agent status. */
export interface OtaUpdaterStatus {
  revision: number | null;
  /** False once the hub answered 404 (no OTA routes); null before the first answer. */
  hubSupportsOta: boolean | null;
  targets: Partial<Record<OtaTarget, OtaTargetStatus>>;
  /** The update being downloaded or installed. */
  busyWith: { campaignId: string; target: OtaTarget; state: OtaStatus['state'] } | null;
  restartRequested: string | null;
  lastError: { code: string; message: string } | null;
  reports: StatusReporterStatus;
}

/** Fraction of progress between two `downloading` reports. */
const PROGRESS_STEP = 0.1;

/** The agent's OTA updater; see the module comment. */
export class OtaUpdater {
  readonly #o: OtaUpdaterOptions;
  readonly #log: Logger;
  readonly #stores = new Map<OtaTarget, SlotStore>();
  readonly #reporter: StatusReporter<OtaStatus>;
  readonly #loop = new BackgroundLoop((signal) => this.#run(signal));
  /** campaignId → where its final outcome is kept, to mark it reported once delivered. */
  readonly #finals = new Map<string, { target: OtaTarget; sha256: string }>();
  #trials: Array<Promise<void>> = [];
  #trialController: AbortController | null = null;
  #started = false;
  #retryAttempt = 0;
  #status: Omit<OtaUpdaterStatus, 'targets' | 'reports'> = {
    revision: null,
    hubSupportsOta: null,
    busyWith: null,
    restartRequested: null,
    lastError: null,
  };

  constructor(o: OtaUpdaterOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.#reporter = new StatusReporter<OtaStatus>({
      client: o.client,
      backoff: o.backoff,
      logger: o.logger,
      onDelivered: (campaignId, status) => void this.#delivered(campaignId, status),
    });
  }

  /**
   * Opens the slot stores, re-sends unreported outcomes, starts the health check of a
   * slot on trial (counting a firmware boot first), and starts polling. Idempotent.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await mkdir(this.#downloadsDir, { recursive: true });
    for (const target of OTA_TARGETS) {
      const store = new SlotStore({
        stateDir: this.#o.stateDir,
        target,
        factoryVersion: target === 'agent' ? this.#o.agentVersion : this.#o.firmwareVersion,
        freeBytes: this.#o.freeBytes,
        logger: this.#log,
      });
      try {
        await store.open();
        this.#stores.set(target, store);
      } catch (err) {
        // The other target keeps working; this one needs a field engineer (the code says what).
        this.#log.error({ target, code: codeOf(err), err: errorMessage(err) }, 'OTA slot store unusable');
      }
    }
    await this.#reporter.start();
    for (const [target, store] of this.#stores) {
      for (const o of store.state().outcomes) if (!o.reported) this.#reportOutcome(target, o);
    }
    this.#trialController = new AbortController();
    for (const [target, store] of this.#stores) {
      const trial = store.state().trial;
      if (trial) this.#trials.push(this.#resumeTrial(target, store, trial, this.#trialController.signal));
    }
    this.#loop.start();
  }

  /** Stops polling, a download in flight and a health check (a trial stays pending). Idempotent. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#trialController?.abort();
    await this.#loop.stop();
    await Promise.all(this.#trials);
    this.#trials = [];
    await this.#reporter.stop();
    this.#started = false;
  }

  /** Polls now (NCMD OTA_REVISION, reconnect). */
  syncNow(reason: string): void {
    this.#log.debug({ reason }, 'OTA sync requested');
    this.#loop.notify();
  }

  /** Figures for the agent status. */
  status(): OtaUpdaterStatus {
    const targets: Partial<Record<OtaTarget, OtaTargetStatus>> = {};
    for (const [target, store] of this.#stores) {
      const s = store.state();
      targets[target] = { runningVersion: store.runningVersion(), slot: s.active, trial: s.trial };
    }
    return { ...this.#status, targets, reports: this.#reporter.status() };
  }

  get #downloadsDir(): string {
    return join(this.#o.stateDir, 'ota', 'downloads');
  }

  // ---- trial after a restart ---------------------------------------------------

  async #resumeTrial(
    target: OtaTarget,
    store: SlotStore,
    trial: OtaTrial,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      if (target === 'agent') {
        // The supervisor counted this boot; without it, the trial slot is not what runs.
        if (!this.#o.supervised) {
          await this.#rollback(target, store, {
            code: OTA_ERRORS.unsupervised,
            reason: `agent ${trial.version} was activated but this agent runs without the supervisor (citysense agent --supervise); going back`,
          });
          return;
        }
        if (this.#o.runningSlot !== undefined && this.#o.runningSlot !== trial.slot) {
          // The supervisor started another slot (e.g. it could not read slots.json): never confirm what does not run.
          await this.#rollback(target, store, {
            code: OTA_ERRORS.slotState,
            reason: `agent ${trial.version} is on trial in slot ${trial.slot} but this agent runs from ${this.#o.runningSlot}; going back`,
          });
          return;
        }
      } else {
        const counted = (await store.bootTrial()) ?? trial;
        const decision = bootDecision(counted, this.#o.maxBoots ?? DEFAULT_MAX_TRIAL_BOOTS);
        if (decision.action === 'rollback') {
          await this.#rollback(target, store, decision, true);
          return;
        }
      }
      this.#log.info(
        {
          target,
          version: trial.version,
          slot: trial.slot,
          deadline: new Date(trialDeadline(trial)).toISOString(),
        },
        'new version on trial: waiting for broker, drivers and an uplink ack',
      );
      const result = await runHealthCheck(
        {
          deadline: trialDeadline(trial),
          probe: this.#o.probe,
          intervalMs: this.#o.healthCheckIntervalMs,
          now: this.#o.clock,
        },
        signal,
      );
      if (result.outcome === 'aborted') return;
      if (result.outcome === 'healthy') {
        if (target === 'firmware')
          await this.#o.bootloader?.('confirm', trial.slot, store.slotPath(trial.slot));
        const outcome = await store.confirm();
        this.#log.info({ target, version: trial.version }, 'new version passed its health check');
        this.#reportOutcome(target, outcome);
        return;
      }
      await this.#rollback(target, store, result, true);
    } catch (err) {
      this.#log.error({ target, code: codeOf(err), err: errorMessage(err) }, 'OTA trial step failed');
    }
  }

  /** Rolls the trial back, reports it, and restarts into the previous slot when the new one runs. */
  async #rollback(
    target: OtaTarget,
    store: SlotStore,
    why: { code: string; reason: string },
    restart = false,
  ): Promise<void> {
    const outcome = await store.rollback({ code: why.code, reason: why.reason });
    this.#log.warn(
      { target, version: outcome.version, code: why.code, reason: why.reason },
      'OTA rolled back',
    );
    if (target === 'firmware' && this.#o.bootloader)
      await this.#o
        .bootloader('rollback', outcome.slot, outcome.slot ? store.slotPath(outcome.slot) : null)
        .catch((err: unknown) =>
          this.#log.error({ err: errorMessage(err) }, 'bootloader hook failed on rollback'),
        );
    this.#reportOutcome(target, outcome);
    if (restart) this.#restart(`${target} ${outcome.version} rolled back (${why.code})`);
  }

  #restart(reason: string): void {
    if (this.#status.restartRequested) return;
    this.#status.restartRequested = reason;
    this.#log.info({ reason }, 'OTA asks for a restart');
    this.#o.requestRestart(reason);
  }

  // ---- sync loop ----------------------------------------------------------------

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let waitMs = this.#o.pollIntervalMs;
      try {
        const retry = await this.#poll(signal);
        if (retry)
          waitMs = Math.min(
            waitMs,
            backoffDelay(this.#retryAttempt++, this.#o.backoff) + this.#o.backoff.initialMs,
          );
        else this.#retryAttempt = 0;
      } catch (err) {
        if (signal.aborted) break;
        this.#status.lastError = { code: codeOf(err), message: errorMessage(err) };
        this.#log.warn({ code: codeOf(err), err: errorMessage(err) }, 'OTA poll failed; will retry');
      }
      if (signal.aborted || this.#status.restartRequested) break;
      await this.#loop.wakeup.wait(waitMs);
    }
  }

  /** One poll and the work it brings; true when something should be retried soon. */
  async #poll(signal: AbortSignal): Promise<boolean> {
    const doc = await this.#o.client.getDocument(signal);
    if (doc === null) {
      if (this.#status.hubSupportsOta !== false)
        this.#log.info('hub has no OTA routes (older hub); asking again later');
      this.#status.hubSupportsOta = false;
      return false;
    }
    this.#status.hubSupportsOta = true;
    this.#status.lastError = null;
    if (doc.revision !== this.#status.revision)
      this.#log.info({ revision: doc.revision, updates: doc.updates.length }, 'OTA document received');
    this.#status.revision = doc.revision;
    await this.#dropStaleDownloads(doc);
    let retry = false;
    for (const update of doc.updates) {
      if (signal.aborted || this.#status.restartRequested) break;
      retry = (await this.#handle(update, doc, signal)) || retry;
    }
    return retry;
  }

  /** Works on one update; true when it should be retried soon (download broke off). */
  async #handle(u: OtaAssignment, doc: OtaDocument, signal: AbortSignal): Promise<boolean> {
    const store = this.#stores.get(u.target);
    if (!store) return false;
    const done = store.outcomeOf(u.campaignId, u.sha256);
    if (done) {
      if (!done.reported) this.#reportOutcome(u.target, done);
      return false;
    }
    const state = store.state();
    if (state.trial) return false; // on trial: the health check decides first
    if (store.runningVersion() === u.version) {
      this.#reportOutcome(
        u.target,
        await store.recordOutcome({ ...ids(u, doc), state: 'healthy', reason: 'this version already runs' }),
      );
      return false;
    }
    if (u.target === 'agent' && !this.#o.supervised) {
      await this.#fail(store, u, doc, {
        code: OTA_ERRORS.unsupervised,
        reason:
          'agent updates need the supervisor to switch slots: start the gateway with `citysense agent --supervise`',
      });
      return false;
    }
    try {
      await this.#apply(store, u, doc, signal);
      return false;
    } catch (err) {
      if (signal.aborted) return false;
      const code = codeOf(err);
      // Only a broken-off download is worth trying again; everything else needs a new campaign.
      if (code === OTA_ERRORS.download) {
        this.#status.lastError = { code, message: errorMessage(err) };
        this.#log.warn(
          { campaign: u.campaignId, code, err: errorMessage(err) },
          'OTA download broke off; will resume',
        );
        return true;
      }
      await this.#fail(store, u, doc, { code, reason: errorMessage(err) });
      return false;
    } finally {
      this.#status.busyWith = null;
    }
  }

  /** Download → verify → install → activate → restart. Throws coded errors. */
  async #apply(store: SlotStore, u: OtaAssignment, doc: OtaDocument, signal: AbortSignal): Promise<void> {
    const report = (state: OtaStatus['state'], extra: Partial<OtaStatus> = {}) => {
      this.#status.busyWith = { campaignId: u.campaignId, target: u.target, state };
      this.#reporter.update(u.campaignId, { ...this.#baseStatus(store, doc.revision), state, ...extra });
    };
    const artifact = join(this.#downloadsDir, `${u.sha256}.csota`);
    const payload = join(this.#downloadsDir, `${u.sha256}.payload`);
    let shown = -1;
    report('downloading', { progress: 0 });
    await downloadRanged({
      url: this.#o.client.url(u.filePath),
      headers: this.#o.client.authHeaders(),
      partPath: join(this.#downloadsDir, `${u.sha256}.part`),
      finalPath: artifact,
      sha256: u.sha256,
      bytes: u.bytes,
      signal,
      errors: {
        download: OTA_ERRORS.download,
        refused: OTA_ERRORS.downloadRefused,
        digest: OTA_ERRORS.digest,
      },
      noun: 'artifact',
      onProgress: (received, total) => {
        const step = Math.floor(received / total / PROGRESS_STEP);
        if (step === shown) return;
        shown = step;
        report('downloading', { progress: Math.min(1, received / total) });
      },
    });
    try {
      report('verifying');
      const head = await verifyArtifact(artifact, { trustedKeys: doc.trustedKeys });
      const m = head.manifest;
      if (m.name !== u.name || m.version !== u.version || m.target !== u.target)
        throw new CitysenseError(
          OTA_ERRORS.mismatch,
          `the artifact is ${m.target} ${m.name} ${m.version}, the campaign names ${u.target} ${u.name} ${u.version}`,
          422,
        );
      assertCompatible(m, {
        target: u.target,
        hardwareModel: this.#o.hardwareModel,
        arch: arch(),
        agentVersion: this.#o.agentVersion,
      });
      report('installing');
      await extractPayload(artifact, head, payload);
      const slot = await store.install(payload, m);
      report('activating');
      await store.activate({
        slot,
        campaignId: u.campaignId,
        revision: doc.revision,
        sha256: u.sha256,
        healthTimeoutSeconds: u.healthTimeoutSeconds,
      });
      if (u.target === 'firmware' && this.#o.bootloader) {
        try {
          await this.#o.bootloader('activate', slot, store.slotPath(slot));
        } catch (err) {
          // The new slot never ran: undo the activation and report it failed.
          const outcome = await store.rollback({
            code: codeOf(err),
            reason: errorMessage(err),
            state: 'failed',
          });
          this.#reportOutcome(u.target, outcome);
          return;
        }
      }
      this.#log.info({ target: u.target, version: u.version, slot }, 'update activated; restarting into it');
      this.#restart(`activate ${u.target} ${u.version} in slot ${slot}`);
    } finally {
      await rm(artifact, { force: true });
      await rm(payload, { force: true });
    }
  }

  async #fail(
    store: SlotStore,
    u: OtaAssignment,
    doc: OtaDocument,
    why: { code: string; reason: string },
  ): Promise<void> {
    this.#log.warn(
      { campaign: u.campaignId, version: u.version, code: why.code, reason: why.reason },
      'OTA update failed; keeping the running version',
    );
    await rm(join(this.#downloadsDir, `${u.sha256}.part`), { force: true });
    const outcome = await store.recordOutcome({ ...ids(u, doc), state: 'failed', ...why });
    this.#reportOutcome(u.target, outcome);
  }

  async #dropStaleDownloads(doc: OtaDocument): Promise<void> {
    const wanted = new Set(doc.updates.map((u) => u.sha256));
    for (const name of await readdir(this.#downloadsDir).catch(() => [] as string[])) {
      const sha = name.split('.')[0] ?? '';
      if (!wanted.has(sha)) await rm(join(this.#downloadsDir, name), { force: true });
    }
  }

  // ---- reports --------------------------------------------------------------------

  #baseStatus(store: SlotStore, revision: number): OtaStatus {
    const active = store.state().active;
    return {
      revision,
      state: 'queued',
      runningVersion: store.runningVersion(),
      ...(active ? { slot: active } : {}),
    };
  }

  #reportOutcome(target: OtaTarget, o: OtaOutcome): void {
    this.#finals.set(o.campaignId, { target, sha256: o.sha256 });
    const status: OtaStatus = {
      revision: o.revision,
      state: o.state,
      runningVersion: o.runningVersion,
      ...(o.slot ? { slot: o.slot } : {}),
      ...(o.code ? { code: o.code.slice(0, 64) } : {}),
      ...(o.reason ? { reason: o.reason.slice(0, 2000) } : {}),
    };
    this.#reporter.update(o.campaignId, status);
  }

  async #delivered(campaignId: string, status: OtaStatus): Promise<void> {
    if (status.state !== 'healthy' && status.state !== 'failed' && status.state !== 'rolled-back') return;
    const final = this.#finals.get(campaignId);
    const store = final ? this.#stores.get(final.target) : undefined;
    if (!final || !store) return;
    await store
      .markReported(campaignId, final.sha256)
      .catch((err: unknown) =>
        this.#log.warn({ err: errorMessage(err) }, 'could not note an OTA report as delivered'),
      );
  }
}

function ids(u: OtaAssignment, doc: OtaDocument) {
  return { campaignId: u.campaignId, revision: doc.revision, sha256: u.sha256, version: u.version };
}
