import { stat as fsStat, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256OfFile } from './artifact.ts';
import { OTA_ERRORS } from './errors.ts';
import { SlotStore } from './slots.ts';
import { AgentSupervisor, OTA_RESTART_EXIT_CODE, type SupervisedRun } from './supervisor.ts';
import { agentBundle, manifestFor } from './testing/fixtures.ts';

let dir: string;
let stateDir: string;
let runsLog: string;
const supervisors: AgentSupervisor[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-supervisor-'));
  stateDir = join(dir, 'state');
  runsLog = join(dir, 'runs.log');
});
afterEach(async () => {
  for (const s of supervisors.splice(0)) await s.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A stand-in agent (ES module, like bin/citysense.mjs): appends "<name> <slot env>" to the runs log, then stays up until SIGTERM (exit 0). */
function stayingAgent(name: string): string {
  return `
import { appendFileSync, existsSync } from 'node:fs';
appendFileSync(${JSON.stringify(runsLog)}, ${JSON.stringify(name)} + ' ' + process.env.CITYSENSE_OTA_SLOT + '\\n');
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1000);
`;
}

async function installBundle(store: SlotStore, version: string, script: string) {
  const path = await agentBundle(dir, version, script);
  const manifest = manifestFor(
    { name: 'citysense-agent', version, target: 'agent' },
    { bytes: (await fsStat(path)).size, sha256: await sha256OfFile(path) },
  );
  return store.install(path, manifest);
}

async function runsLogLines(): Promise<string[]> {
  return (await readFile(runsLog, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

async function until<T>(check: () => Promise<T> | T, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function supervisor(factoryEntry: string, runs: SupervisedRun[], maxBoots = 3): AgentSupervisor {
  const s = new AgentSupervisor({
    stateDir,
    factoryEntry,
    factoryVersion: '1.0.0',
    args: ['agent'],
    maxBoots,
    crashBackoff: { initialMs: 20, maxMs: 100 },
    stdio: 'ignore',
    onRun: (run) => runs.push(run),
  });
  supervisors.push(s);
  return s;
}

describe('agent supervisor', () => {
  it('rolls a crash-looping agent bundle back after N boots, and the old version runs again', async () => {
    const factory = join(dir, 'factory.mjs');
    await writeFile(factory, stayingAgent('factory'));
    const store = new SlotStore({ stateDir, target: 'agent', factoryVersion: '1.0.0' });
    await store.open();
    const slot = await installBundle(store, '2.0.0', 'process.exit(1);\n');
    await store.activate({
      slot,
      campaignId: 'c1',
      revision: 4,
      sha256: 'e'.repeat(64),
      healthTimeoutSeconds: 300,
    });

    const runs: SupervisedRun[] = [];
    const s = supervisor(factory, runs, 3);
    await s.start();
    await until(
      async () => (await runsLogLines()).includes('factory factory'),
      'the factory agent to run again',
    );

    expect(runs.map((r) => [r.slot, r.version, r.trialBoots])).toEqual([
      ['a', '2.0.0', 1],
      ['a', '2.0.0', 2],
      ['a', '2.0.0', 3],
      [null, '1.0.0', null],
    ]);
    const state = await store.open();
    expect(state).toMatchObject({ active: null, trial: null });
    expect(state.outcomes).toHaveLength(1);
    expect(state.outcomes[0]).toMatchObject({
      campaignId: 'c1',
      state: 'rolled-back',
      code: OTA_ERRORS.crashLoop,
      version: '2.0.0',
      runningVersion: '1.0.0',
      reported: false,
    });
    expect(await s.stop()).toBe(0);
  });

  it(`restarts the agent into the newly active slot when it exits with ${OTA_RESTART_EXIT_CODE}`, async () => {
    const go = join(dir, 'go');
    const factory = join(dir, 'factory.mjs');
    // The factory agent "activates an update" (the test does it for it) and asks for a restart.
    await writeFile(
      factory,
      `${stayingAgent('factory')}
setInterval(() => { if (existsSync(${JSON.stringify(go)})) process.exit(${OTA_RESTART_EXIT_CODE}); }, 20);
`,
    );
    const store = new SlotStore({ stateDir, target: 'agent', factoryVersion: '1.0.0' });
    await store.open();
    const slot = await installBundle(store, '2.0.0', stayingAgent('v2'));

    const runs: SupervisedRun[] = [];
    const s = supervisor(factory, runs);
    await s.start();
    await until(async () => (await runsLogLines()).includes('factory factory'), 'the factory agent');
    await store.activate({
      slot,
      campaignId: 'c2',
      revision: 1,
      sha256: 'd'.repeat(64),
      healthTimeoutSeconds: 300,
    });
    await writeFile(go, '');
    await until(async () => (await runsLogLines()).includes('v2 a'), 'the new slot to run');
    expect(runs.map((r) => [r.slot, r.trialBoots])).toEqual([
      [null, null],
      ['a', 1],
    ]);
    expect((await store.open()).trial).toMatchObject({ slot: 'a', boots: 1 });
    expect(await s.stop()).toBe(0);
  });
});
