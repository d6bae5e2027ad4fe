/**
 * Runs Debian's `sipp` (package sip-tester) against a SIP server, for tests and the video
 * benchmark: one scenario file from this folder, device credentials injected from a CSV.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Scenario files shipped next to this runner. */
export type SippScenario =
  | 'register'
  | 'register-wrong-password'
  | 'register-no-expires'
  | 'register-and-stay'
  | 'catalog-answer'
  | 'register-only'
  | 'keepalive-flood'
  | 'camera-1min';

/** One simulated device of a sipp run: a CSV line (field1 is sipp's whole `[authentication …]` keyword, the form sipp reads from CSV). */
export interface SippDevice {
  deviceId: string;
  password: string;
}

/** A sipp run. */
export interface SippRunOptions {
  scenario: SippScenario;
  /** Out-of-call scenario for requests the server sends (queries). */
  outOfCall?: SippScenario;
  server: { host: string; port: number; id: string; domain: string };
  devices: SippDevice[];
  transport?: 'udp' | 'tcp';
  /** Calls to run; default one per device. */
  calls?: number;
  /** Calls started per second; default 10. */
  rate?: number;
  /** Most calls at once; default unlimited. */
  limit?: number;
  /** Global timeout, s (default 20). */
  timeoutS?: number;
}

/** The outcome of a sipp run. */
export interface SippResult {
  exitCode: number | null;
  /** sipp's error log (unexpected messages), empty when none. */
  errors: string;
  /** sipp's stdout/stderr tail. */
  output: string;
  /** Wall time of the run, ms. */
  elapsedMs: number;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** A running sipp process. */
export interface SippProcess {
  child: ChildProcess;
  done: Promise<SippResult>;
}

/** Starts sipp; `done` resolves when it exits (exit code 0: every call succeeded). */
export async function startSipp(o: SippRunOptions): Promise<SippProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'citysense-sipp-'));
  const csv = join(dir, 'devices.csv');
  const rows = o.devices.map((d) =>
    [
      d.deviceId,
      `[authentication username=${d.deviceId} password=${d.password}]`,
      o.server.domain,
      o.server.id,
    ].join(';'),
  );
  await writeFile(csv, `SEQUENTIAL\n${rows.join('\n')}\n`);
  const errorFile = join(dir, 'errors.log');
  const args = [
    `${o.server.host}:${o.server.port}`,
    '-sf',
    join(HERE, `${o.scenario}.xml`),
    '-inf',
    csv,
    '-i',
    '127.0.0.1',
    '-m',
    String(o.calls ?? o.devices.length),
    '-r',
    String(o.rate ?? 10),
    '-t',
    o.transport === 'tcp' ? 't1' : 'u1',
    '-timeout',
    `${o.timeoutS ?? 20}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_err',
    '-error_file',
    errorFile,
  ];
  if (o.limit !== undefined) args.push('-l', String(o.limit));
  if (o.outOfCall) args.push('-oocsf', join(HERE, `${o.outOfCall}.xml`));
  const started = Date.now();
  const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('latin1')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const done = (async (): Promise<SippResult> => {
    const [exitCode] = (await Promise.race([
      once(child, 'exit'),
      once(child, 'error').then(([err]) => {
        throw new Error(`cannot run sipp (install Debian's sip-tester): ${(err as Error).message}`);
      }),
    ])) as [number | null];
    const errors = await readFile(errorFile, 'utf8').catch(() => '');
    return { exitCode, errors, output, elapsedMs: Date.now() - started };
  })();
  return { child, done };
}

/** Runs sipp to its end. */
export async function runSipp(o: SippRunOptions): Promise<SippResult> {
  return (await startSipp(o)).done;
}

/** Why sipp cannot run here (Debian package sip-tester missing), or undefined when it can. */
export function sippUnavailableReason(): string | undefined {
  const probe = spawnSync('sipp', ['-v'], { encoding: 'latin1' });
  if (probe.error) return `sipp is not installed (apt-get install sip-tester): ${probe.error.message}`;
  return /SIPp v\d/.test(`${probe.stdout}${probe.stderr}`)
    ? undefined
    : 'sipp -v did not print a SIPp version';
}

/** True when sipp tests should be skipped: sipp is missing and this is not CI (CI must run them). */
export function shouldSkipSipp(): boolean {
  const reason = sippUnavailableReason();
  if (reason && process.env.CI) throw new Error(`CI must run the sipp tests: ${reason}`);
  return reason !== undefined;
}

/** Suite title that says why it is skipped. */
export function sippSuiteTitle(title: string): string {
  const reason = sippUnavailableReason();
  return reason ? `${title} (skipped: ${reason})` : title;
}
