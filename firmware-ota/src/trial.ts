/**
 * The health check after an activation, as pure logic and timers (no processes): on every
 * boot with a pending trial the boot is counted and a crash loop rolls back; then the new
 * version must show, within the assignment's `healthTimeoutSeconds` counted from
 * activation, that the agent is connected to the broker, every driver has started (none
 * faulted) and the hub has acked an uplink record sent after this boot. All three → confirm;
 * the deadline passes first → roll back.
 */
import { OTA_ERRORS } from './errors.ts';
import type { OtaTrial } from './slots.ts';

/** Boots a trial slot may take without passing its health check, by default. */
export const DEFAULT_MAX_TRIAL_BOOTS = 3;

/** What the running agent looks like to the health check right now. */
export interface HealthSample {
  /** MQTT session with the hub broker up, births out. */
  connected: boolean;
  /** Drivers configured and not yet running. */
  driversPending: string[];
  /** Drivers in the faulted state. */
  driversFaulted: string[];
  /** The hub acked an uplink record after this boot. */
  uplinkAcked: boolean;
}

/** One check of the health check, for the reason of a rollback. */
export type HealthCheckName = 'broker' | 'drivers' | 'uplink-ack';

/** The checks `sample` does not pass, each with a few words on why. */
export function unmetChecks(sample: HealthSample): Array<{ check: HealthCheckName; why: string }> {
  const unmet: Array<{ check: HealthCheckName; why: string }> = [];
  if (!sample.connected) unmet.push({ check: 'broker', why: 'not connected to the hub broker' });
  if (sample.driversFaulted.length > 0)
    unmet.push({ check: 'drivers', why: `driver(s) faulted: ${sample.driversFaulted.join(', ')}` });
  else if (sample.driversPending.length > 0)
    unmet.push({ check: 'drivers', why: `driver(s) not started: ${sample.driversPending.join(', ')}` });
  if (!sample.uplinkAcked) unmet.push({ check: 'uplink-ack', why: 'no uplink record acked by the hub yet' });
  return unmet;
}

/** What to do with a trial at boot. */
export type BootDecision =
  | { action: 'run' }
  | { action: 'rollback'; code: typeof OTA_ERRORS.crashLoop; reason: string };

/**
 * Decides at boot, after the boot was counted (`trial.boots` includes this one): more than
 * `maxBoots` boots without a confirm is a crash loop.
 */
export function bootDecision(trial: OtaTrial, maxBoots: number): BootDecision {
  if (trial.boots <= maxBoots) return { action: 'run' };
  return {
    action: 'rollback',
    code: OTA_ERRORS.crashLoop,
    reason: `${trial.version} in slot ${trial.slot} restarted ${trial.boots - 1} time(s) without passing its health check (at most ${maxBoots} boots allowed)`,
  };
}

/** When the trial's health check gives up, ms since the epoch: activation + timeout. */
export function trialDeadline(trial: OtaTrial): number {
  return Date.parse(trial.activatedAt) + trial.healthTimeoutSeconds * 1000;
}

/** How a health check ended. */
export type TrialResult =
  | { outcome: 'healthy' }
  | { outcome: 'timeout'; code: typeof OTA_ERRORS.healthTimeout; reason: string; unmet: HealthCheckName[] }
  | { outcome: 'aborted' };

/** Options of a health check run. */
export interface HealthCheckOptions {
  /** Gives up at this time, ms since the epoch. */
  deadline: number;
  /** Samples the running agent. */
  probe: () => HealthSample;
  /** How often to sample, ms; default 500. */
  intervalMs?: number | undefined;
  /** Clock, ms since the epoch; defaults to Date.now. */
  now?: (() => number) | undefined;
  /** Called with each sample that does not pass yet (for logs and tests). */
  onSample?: ((sample: HealthSample) => void) | undefined;
}

/**
 * Samples until every check passes (healthy), the deadline passes (timeout, with what was
 * still missing) or `signal` aborts (aborted: the agent is stopping; the trial stays
 * pending and the next boot resumes it). A deadline that lies further ahead than a clock
 * jump could explain is not shortened: it is the activation time plus the timeout.
 */
export function runHealthCheck(options: HealthCheckOptions, signal: AbortSignal): Promise<TrialResult> {
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? 500;
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    const finish = (result: TrialResult) => {
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onAbort = () => finish({ outcome: 'aborted' });
    const tick = () => {
      timer = null;
      if (signal.aborted) return finish({ outcome: 'aborted' });
      const sample = options.probe();
      const unmet = unmetChecks(sample);
      if (unmet.length === 0) return finish({ outcome: 'healthy' });
      const left = options.deadline - now();
      if (left <= 0)
        return finish({
          outcome: 'timeout',
          code: OTA_ERRORS.healthTimeout,
          reason: `health check did not pass in time: ${unmet.map((u) => u.why).join('; ')}`,
          unmet: unmet.map((u) => u.check),
        });
      options.onSample?.(sample);
      timer = setTimeout(tick, Math.min(intervalMs, left));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    tick();
  });
}
