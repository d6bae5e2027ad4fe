/**
 * The agent supervisor (`citysense agent --supervise`): the part that plays bootloader
 * for the agent's own software, as RAUC, Mender or swupdate do with U-Boot. It runs the
 * agent from the active slot (the factory install when no slot has been installed) as a
 * child process, counts the boots of a slot on trial, rolls back to the previous slot
 * after too many boots without a confirm (crash loop), and restarts the agent when it
 * exits with `OTA_RESTART_EXIT_CODE` (it activated a new slot, or rolled one back).
 *
 * The supervisor only touches slots.json between two runs of the agent; while the agent
 * runs, the agent's updater owns it. It deliberately stays small: it is the one part an
 * update cannot replace.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { BUNDLE_ENTRY, type SlotName, SlotStore } from './slots.ts';
import { bootDecision, DEFAULT_MAX_TRIAL_BOOTS } from './trial.ts';

/** Exit code by which the agent asks its supervisor to start it again (from the now active slot). */
export const OTA_RESTART_EXIT_CODE = 75;
/** Environment variable the supervisor sets for its child: the slot it runs (`a`, `b`, `factory`). */
export const OTA_SLOT_ENV = 'CITYSENSE_OTA_SLOT';
/** Environment variable the supervisor sets for its child (maps to the agent's `ota.supervised`). */
export const OTA_SUPERVISED_ENV = 'CITYSENSE_OTA_SUPERVISED';

/** One run of the agent as the supervisor started it. */
export interface SupervisedRun {
  pid: number;
  /** null = factory install. */
  slot: SlotName | null;
  version: string;
  entry: string;
  /** Boots of the trial so far, when the slot is on trial. */
  trialBoots: number | null;
}

/** Options of the supervisor. */
export interface AgentSupervisorOptions {
  /** The agent's state directory (slots in `<stateDir>/ota/agent/`). */
  stateDir: string;
  /** Entry point of the factory install (this tree's bin/citysense.mjs). */
  factoryEntry: string;
  /** Version of the factory install. */
  factoryVersion: string;
  /** Arguments after the entry, e.g. `['agent', '--config', 'agent.json']`. */
  args: readonly string[];
  /** Boots a slot on trial may take before it is rolled back; default 3. */
  maxBoots?: number | undefined;
  /** Delay before restarting an agent that crashed outside a trial, doubling to `maxMs`. */
  crashBackoff?: { initialMs: number; maxMs: number } | undefined;
  /** How long a stopping agent may take before it is killed, ms; default 30 s. */
  stopTimeoutMs?: number | undefined;
  /** Environment of the child; defaults to this process's. */
  env?: NodeJS.ProcessEnv | undefined;
  /** `inherit` (default) or `ignore` for the child's stdio. */
  stdio?: 'inherit' | 'ignore' | undefined;
  /** Called for every start of the agent. */
  onRun?: ((run: SupervisedRun) => void) | undefined;
  logger?: Logger | undefined;
}

/** Runs the agent from its active slot until stopped; see the module comment. */
export class AgentSupervisor {
  readonly #o: AgentSupervisorOptions;
  readonly #log: Logger;
  readonly #store: SlotStore;
  #controller: AbortController | null = null;
  #loop: Promise<number> | null = null;
  #child: ChildProcess | null = null;

  constructor(o: AgentSupervisorOptions) {
    this.#o = o;
    this.#log = o.logger ?? componentLogger('supervisor');
    this.#store = new SlotStore({
      stateDir: o.stateDir,
      target: 'agent',
      factoryVersion: o.factoryVersion,
      logger: this.#log,
    });
  }

  /** Starts supervising in the background. Idempotent. */
  async start(): Promise<void> {
    if (this.#loop) return;
    this.#controller = new AbortController();
    this.#loop = this.#run(this.#controller.signal);
  }

  /** Resolves with the exit code the supervisor ends with (the agent's last exit code). */
  get exited(): Promise<number> {
    return this.#loop ?? Promise.resolve(0);
  }

  /** Stops the agent (SIGTERM: it flushes its spool), then the supervisor. Idempotent. */
  async stop(): Promise<number> {
    const loop = this.#loop;
    if (!loop) return 0;
    this.#controller?.abort();
    this.#child?.kill('SIGTERM');
    const code = await loop;
    this.#loop = null;
    return code;
  }

  async #run(signal: AbortSignal): Promise<number> {
    const backoff = this.#o.crashBackoff ?? { initialMs: 1000, maxMs: 60_000 };
    let crashes = 0;
    for (;;) {
      if (signal.aborted) return 0;
      const run = await this.#prepareBoot();
      const code = await this.#spawn(run, signal);
      if (signal.aborted) return code;
      if (code === OTA_RESTART_EXIT_CODE) {
        this.#log.info({ slot: run.slot ?? 'factory' }, 'agent asked for a restart (slot switch)');
        crashes = 0;
        continue;
      }
      if (code === 0) {
        this.#log.info('agent stopped on its own; supervisor ends');
        return 0;
      }
      // A slot on trial restarts at once: its boots decide; otherwise back off like a service manager.
      const delayMs =
        run.trialBoots !== null
          ? backoff.initialMs
          : Math.min(backoff.maxMs, backoff.initialMs * 2 ** crashes);
      crashes++;
      this.#log.warn(
        { code, slot: run.slot ?? 'factory', version: run.version, delayMs },
        'agent exited with an error; restarting',
      );
      await sleep(delayMs, signal);
    }
  }

  /** Counts a trial boot (rolling back a crash loop) and picks the entry point to run. */
  async #prepareBoot(): Promise<Omit<SupervisedRun, 'pid'>> {
    const maxBoots = this.#o.maxBoots ?? DEFAULT_MAX_TRIAL_BOOTS;
    let slot: SlotName | null = null;
    let trialBoots: number | null = null;
    try {
      await this.#store.open();
      const trial = await this.#store.bootTrial();
      if (trial) {
        const decision = bootDecision(trial, maxBoots);
        if (decision.action === 'rollback') {
          await this.#store.rollback({ code: decision.code, reason: decision.reason });
        } else trialBoots = trial.boots;
      }
      slot = this.#store.state().active;
    } catch (err) {
      // The factory install always boots: an unreadable slot state must not brick the gateway.
      this.#log.error({ err: errorMessage(err) }, 'slot state unusable; starting the factory install');
      slot = null;
      trialBoots = null;
    }
    const version = slot ? this.#store.runningVersion() : this.#o.factoryVersion;
    const entry = slot ? join(this.#store.slotPath(slot), BUNDLE_ENTRY) : this.#o.factoryEntry;
    return { slot, version, entry, trialBoots };
  }

  #spawn(run: Omit<SupervisedRun, 'pid'>, signal: AbortSignal): Promise<number> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [run.entry, ...this.#o.args], {
        stdio: this.#o.stdio ?? 'inherit',
        env: {
          ...(this.#o.env ?? process.env),
          [OTA_SLOT_ENV]: run.slot ?? 'factory',
          [OTA_SUPERVISED_ENV]: 'true',
        },
      });
      this.#child = child;
      let killTimer: NodeJS.Timeout | null = null;
      const onAbort = () => {
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), this.#o.stopTimeoutMs ?? 30_000);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      child.once('spawn', () => {
        this.#log.info(
          { pid: child.pid, slot: run.slot ?? 'factory', version: run.version, trialBoots: run.trialBoots },
          'agent started',
        );
        this.#o.onRun?.({ ...run, pid: child.pid ?? 0 });
      });
      const done = (code: number) => {
        if (killTimer) clearTimeout(killTimer);
        signal.removeEventListener('abort', onAbort);
        this.#child = null;
        resolve(code);
      };
      child.once('error', (err) => {
        this.#log.error({ err: errorMessage(err), entry: run.entry }, 'agent could not be started');
        done(127);
      });
      child.once('exit', (code, sig) => done(code ?? 128 + (sig === 'SIGKILL' ? 9 : 15)));
    });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
