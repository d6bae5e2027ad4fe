import type { AgentConfig } from '../config.ts';
import type { NodeIdentity } from '../identity-store.ts';

/** Verdict of one diagnostic check. */
export type CheckVerdict = 'ok' | 'warn' | 'fail';

/** One line of the doctor report: what was checked, the verdict, and what to do about it. */
export interface CheckResult {
  /** Stable check name, e.g. `hub`, `broker`, `driver:modbus-1`, `camera:cam-1`. */
  name: string;
  verdict: CheckVerdict;
  /** One line: what was found and, when not ok, what to do. */
  detail: string;
}

/** The whole self-diagnosis of one gateway. */
export interface DoctorReport {
  /** ISO time the report was taken. */
  at: string;
  nodeId: string | null;
  checks: CheckResult[];
  /** True when no check failed (warnings allowed). */
  healthy: boolean;
}

/** What every check family gets: the resolved config, the stored identity (null when not enrolled) and a deadline. */
export interface CheckContext {
  config: Readonly<AgentConfig>;
  identity: NodeIdentity | null;
  /** Aborted when the check's time is up. */
  signal: AbortSignal;
  /** Per-check budget in ms; network probes use it as their own timeout. */
  timeoutMs: number;
}

/** A check family: returns one or more report lines. */
export type CheckFamily = (ctx: CheckContext) => Promise<CheckResult[]>;

/** Shorthand constructor for a report line. */
export function result(name: string, verdict: CheckVerdict, detail: string): CheckResult {
  return { name, verdict, detail };
}
