import { errorMessage } from '@citysense/protocol';
import type { AgentConfig } from '../config.ts';
import { IdentityStore, type NodeIdentity } from '../identity-store.ts';
import { checkBroker } from './broker.ts';
import { checkCameras } from './cameras.ts';
import { checkDrivers } from './drivers.ts';
import { checkHub } from './hub.ts';
import { checkOnnx } from './onnx.ts';
import type { CheckContext, CheckFamily, CheckResult, DoctorReport } from './report.ts';
import { result } from './report.ts';
import { checkDisk, checkSpool } from './storage.ts';

/** Options of one doctor run. */
export interface DoctorOptions {
  /** Budget per check family in ms (default 5000); a family that overruns is a fail line. */
  timeoutMs?: number;
  /** Check families to run, by name; defaults to all built-in ones. */
  checks?: Readonly<Record<string, CheckFamily>>;
  signal?: AbortSignal;
}

/** The built-in check families, by name. */
export const builtinChecks: Readonly<Record<string, CheckFamily>> = {
  hub: checkHub,
  broker: checkBroker,
  disk: checkDisk,
  spool: checkSpool,
  drivers: checkDrivers(),
  cameras: checkCameras,
  onnx: checkOnnx,
};

/**
 * Runs every check family concurrently, each with its own deadline, and returns the
 * report. Never throws for a failing check: failures are report lines.
 */
export async function runDoctor(
  config: Readonly<AgentConfig>,
  options: DoctorOptions = {},
): Promise<DoctorReport> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const checks: CheckResult[] = [];
  let identity: NodeIdentity | null = null;
  try {
    identity = await new IdentityStore(config.stateDir).load();
    checks.push(
      identity
        ? result('identity', 'ok', `enrolled as ${identity.groupId}/${identity.nodeId} at ${identity.hubUrl}`)
        : result(
            'identity',
            'fail',
            'not enrolled (no identity.json in stateDir): start the agent once with --hub and --token',
          ),
    );
    if (identity && identity.hubUrl !== config.hubUrl)
      checks.push(
        result(
          'identity',
          'warn',
          `config hubUrl ${config.hubUrl} differs from the enrolled hub ${identity.hubUrl}: the agent uses the enrolled one`,
        ),
      );
  } catch (err) {
    checks.push(result('identity', 'fail', errorMessage(err)));
  }
  const families = Object.entries(options.checks ?? builtinChecks);
  const outcomes = await Promise.all(
    families.map(([name, family]) =>
      runFamily(name, family, { config, identity, timeoutMs }, options.signal),
    ),
  );
  for (const lines of outcomes) checks.push(...lines);
  return {
    at: new Date().toISOString(),
    nodeId: identity?.nodeId ?? null,
    checks,
    healthy: checks.every((c) => c.verdict !== 'fail'),
  };
}

async function runFamily(
  name: string,
  family: CheckFamily,
  base: Omit<CheckContext, 'signal'>,
  outer: AbortSignal | undefined,
): Promise<CheckResult[]> {
  const deadline = AbortSignal.timeout(base.timeoutMs);
  const signal = outer ? AbortSignal.any([deadline, outer]) : deadline;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<CheckResult[]>((resolve) => {
    // A little after the signal, so a check that honours it reports its own, more precise failure.
    timer = setTimeout(
      () =>
        resolve([
          result(
            name,
            'fail',
            `no answer within ${base.timeoutMs} ms: the check hung; see the other lines for the cause`,
          ),
        ]),
      base.timeoutMs + 250,
    );
  });
  try {
    return await Promise.race([family({ ...base, signal }), timedOut]);
  } catch (err) {
    return [result(name, 'fail', `check crashed: ${errorMessage(err)}`)];
  } finally {
    clearTimeout(timer);
  }
}
