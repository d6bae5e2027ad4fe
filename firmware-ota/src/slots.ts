/**
 * A/B slots on disk for one update target (the agent's own software, or the gateway's
 * firmware image), in the manner of RAUC and Mender:
 *
 *   <stateDir>/ota/<target>/slots.json     which slot boots, what each holds, the trial, outcomes
 *   <stateDir>/ota/<target>/a/  b/          slot contents (agent: extracted bundle; firmware: image.bin)
 *   <stateDir>/ota/<target>/.staging-<a|b>  a slot being written (deleted on recovery)
 *
 * `active: null` is the factory install (the tree the agent was installed from, or the
 * firmware the gateway shipped with). An update is written into the inactive slot,
 * activated as a trial (the slot boots, the previous one is remembered), then confirmed
 * (it becomes the last good slot) or rolled back (the previous slot boots again).
 *
 * Crash safety: slots.json changes only by write-then-rename (fsynced), and a slot is
 * marked empty in slots.json before its directory is touched and marked installed only
 * after its staging directory was renamed into place. A kill -9 at any point leaves a
 * state that names only complete slots; `open()` deletes the debris.
 */
import { copyFile, mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CitysenseError,
  componentLogger,
  errorMessage,
  type Logger,
  OTA_TARGETS,
  type OtaManifest,
  type OtaTarget,
} from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { extract as extractTar, list as listTar } from 'tar';
import { readFileIfExists, syncDir, writeFileAtomic } from './atomic-file.ts';
import { OTA_ERRORS } from './errors.ts';

/** The two slots. */
export const SLOT_NAMES = ['a', 'b'] as const;
/** One slot. */
export type SlotName = (typeof SLOT_NAMES)[number];

/** Entry point of an agent bundle, relative to its slot: what the supervisor runs. */
export const BUNDLE_ENTRY = 'bin/citysense.mjs';
/** File name of a firmware image in its slot: what the bootloader hook is given. */
export const FIRMWARE_IMAGE = 'image.bin';
/** Free space kept back beyond what a slot needs, so the spool and logs never starve. */
export const SLOT_SPACE_RESERVE_BYTES = 16 * 1024 * 1024;
/** Outcomes kept in slots.json (oldest dropped first). */
const MAX_OUTCOMES = 20;

const SlotNameSchema = Type.Union(SLOT_NAMES.map((s) => Type.Literal(s)));

const SlotInfoSchema = Type.Object({
  name: Type.String(),
  version: Type.String(),
  /** SHA-256 of the payload (the manifest's). */
  payloadSha256: Type.String(),
  /** Bytes on disk in the slot. */
  bytes: Type.Integer({ minimum: 0 }),
  installedAt: Type.String(),
});
/** What one slot holds. */
export type SlotInfo = Static<typeof SlotInfoSchema>;

const TrialSchema = Type.Object({
  slot: SlotNameSchema,
  version: Type.String(),
  campaignId: Type.String(),
  /** The OTA document revision the node acted on. */
  revision: Type.Integer({ minimum: 0 }),
  /** SHA-256 of the artifact file (the assignment's). */
  sha256: Type.String(),
  activatedAt: Type.String(),
  /** Boots of the trial slot so far (crash-loop detection). */
  boots: Type.Integer({ minimum: 0 }),
  healthTimeoutSeconds: Type.Integer({ minimum: 1 }),
  /** The slot to go back to; null = the factory install. */
  previous: Type.Union([SlotNameSchema, Type.Null()]),
});
/** A slot activated and not yet confirmed. */
export type OtaTrial = Static<typeof TrialSchema>;

const OutcomeSchema = Type.Object({
  campaignId: Type.String(),
  revision: Type.Integer({ minimum: 0 }),
  sha256: Type.String(),
  version: Type.String(),
  state: Type.Union([Type.Literal('healthy'), Type.Literal('failed'), Type.Literal('rolled-back')]),
  code: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  at: Type.String(),
  runningVersion: Type.String(),
  slot: Type.Union([SlotNameSchema, Type.Null()]),
  /** Whether the hub has taken the report. */
  reported: Type.Boolean(),
});
/** The final result of one update on this node, kept until reported (and a while after). */
export type OtaOutcome = Static<typeof OutcomeSchema>;

const SlotsStateSchema = Type.Object({
  format: Type.Literal(1),
  target: Type.Union(OTA_TARGETS.map((t) => Type.Literal(t))),
  /** The slot that boots; null = factory install. */
  active: Type.Union([SlotNameSchema, Type.Null()]),
  /** The last slot that passed its health check; null = factory install. */
  lastGood: Type.Union([SlotNameSchema, Type.Null()]),
  slots: Type.Object({
    a: Type.Union([SlotInfoSchema, Type.Null()]),
    b: Type.Union([SlotInfoSchema, Type.Null()]),
  }),
  trial: Type.Union([TrialSchema, Type.Null()]),
  outcomes: Type.Array(OutcomeSchema),
});
/** Contents of slots.json. */
export type SlotsState = Static<typeof SlotsStateSchema>;

/** Options of a slot store. */
export interface SlotStoreOptions {
  /** The agent's state directory; slots live in `<stateDir>/ota/<target>/`. */
  stateDir: string;
  target: OtaTarget;
  /** Version of the factory install (the running agent's own version, or the shipped firmware's). */
  factoryVersion: string;
  /** Free bytes where the slots live; defaults to statfs. Tests pass a small number to see CS_ERR_OTA_NO_SPACE. */
  freeBytes?: ((dir: string) => Promise<number>) | undefined;
  logger?: Logger | undefined;
}

/** What `activate` needs to know about the update. */
export interface ActivationRequest {
  slot: SlotName;
  campaignId: string;
  revision: number;
  sha256: string;
  healthTimeoutSeconds: number;
}

/** Why a trial ends without confirm. */
export interface RollbackRequest {
  code: string;
  reason: string;
  /** `rolled-back` (default) after the new slot ran; `failed` when it never ran (activation hook failed). */
  state?: 'rolled-back' | 'failed' | undefined;
}

/** The A/B slot store of one target; see the module comment for layout and crash safety. */
export class SlotStore {
  readonly target: OtaTarget;
  /** `<stateDir>/ota/<target>`. */
  readonly dir: string;
  readonly #o: SlotStoreOptions;
  readonly #log: Logger;
  #state: SlotsState | null = null;
  /** State changes run one after another. */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(o: SlotStoreOptions) {
    this.#o = o;
    this.target = o.target;
    this.dir = join(o.stateDir, 'ota', o.target);
    this.#log = o.logger ?? componentLogger(`ota-slots-${o.target}`);
  }

  /**
   * Reads slots.json (a fresh store when there is none) and clears what a crash left
   * behind: staging directories, temp files, contents of slots the state calls empty.
   * Call again to re-read a state another process changed, but only while no other store
   * on the same directory writes (the supervisor opens between two runs of the agent);
   * to look while the agent runs, use `readSlotsState`. Throws CS_ERR_OTA_SLOT_STATE when
   * slots.json is not a slot state.
   */
  async open(): Promise<SlotsState> {
    return this.#serial(async () => {
      await mkdir(this.dir, { recursive: true });
      this.#state = await readSlotsState(this.#o.stateDir, this.target);
      await this.#recover();
      return structuredClone(this.#state);
    });
  }

  /** A copy of the current state (after `open`). */
  state(): SlotsState {
    return structuredClone(this.#current());
  }

  /** Directory of a slot. */
  slotPath(slot: SlotName): string {
    return join(this.dir, slot);
  }

  /** Version that boots now: the active slot's, or the factory version. */
  runningVersion(): string {
    const s = this.#current();
    return s.active ? (s.slots[s.active]?.version ?? this.#o.factoryVersion) : this.#o.factoryVersion;
  }

  /** The slot an install writes to: never the active one nor the last good one. */
  installSlot(): SlotName {
    const s = this.#current();
    if (s.active === null) return s.lastGood === 'a' ? 'b' : 'a';
    return s.active === 'a' ? 'b' : 'a';
  }

  /**
   * Writes a verified payload into the inactive slot: an agent bundle (.tar.gz) is
   * extracted, a firmware image copied as is. Checks free space first. Throws
   * CS_ERR_OTA_BUSY during a trial, CS_ERR_OTA_INCOMPATIBLE for another target,
   * CS_ERR_OTA_NO_SPACE, CS_ERR_OTA_BUNDLE_INVALID, CS_ERR_OTA_INSTALL. On any error the
   * slot is left empty and nothing else changes.
   */
  async install(payloadPath: string, manifest: OtaManifest): Promise<SlotName> {
    return this.#serial(async () => {
      const s = this.#current();
      if (s.trial)
        throw new CitysenseError(
          OTA_ERRORS.busy,
          `${this.target} ${s.trial.version} is on trial in slot ${s.trial.slot}; it must pass or roll back before another install`,
          409,
        );
      if (manifest.target !== this.target)
        throw new CitysenseError(
          OTA_ERRORS.incompatible,
          `${manifest.name} ${manifest.version} is a ${manifest.target} artifact, not ${this.target}`,
          409,
        );
      const slot = this.installSlot();
      const need = this.target === 'agent' ? await bundleBytes(payloadPath) : (await stat(payloadPath)).size;
      const free = await (this.#o.freeBytes ?? statfsFree)(this.dir);
      if (free < need + SLOT_SPACE_RESERVE_BYTES)
        throw new CitysenseError(
          OTA_ERRORS.noSpace,
          `slot ${slot} needs ${need} bytes plus ${SLOT_SPACE_RESERVE_BYTES} in reserve, ${free} are free in ${this.dir}; free disk space and retry`,
          507,
          { need, free },
        );
      // Empty in the state before the directory is touched: a crash can never boot half a slot.
      if (s.slots[slot] !== null) await this.#write({ ...s, slots: { ...s.slots, [slot]: null } });
      const staging = join(this.dir, `.staging-${slot}`);
      try {
        await rm(staging, { recursive: true, force: true });
        await mkdir(staging, { recursive: true });
        if (this.target === 'agent') await extractBundle(payloadPath, staging);
        else {
          const image = join(staging, FIRMWARE_IMAGE);
          await copyFile(payloadPath, image);
          await fsyncFile(image);
        }
        await syncDir(staging);
        await rm(this.slotPath(slot), { recursive: true, force: true });
        await rename(staging, this.slotPath(slot));
        await syncDir(this.dir);
      } catch (err) {
        await rm(staging, { recursive: true, force: true }).catch(() => undefined);
        if (err instanceof CitysenseError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        throw new CitysenseError(
          code === 'ENOSPC' ? OTA_ERRORS.noSpace : OTA_ERRORS.install,
          `writing slot ${slot} failed: ${errorMessage(err)}`,
          code === 'ENOSPC' ? 507 : 500,
        );
      }
      const info: SlotInfo = {
        name: manifest.name,
        version: manifest.version,
        payloadSha256: manifest.payload.sha256,
        bytes: need,
        installedAt: new Date().toISOString(),
      };
      const now = this.#current();
      await this.#write({ ...now, slots: { ...now.slots, [slot]: info } });
      this.#log.info({ slot, version: manifest.version }, 'slot installed');
      return slot;
    });
  }

  /** Makes an installed slot the one that boots, on trial. Throws CS_ERR_OTA_BUSY or CS_ERR_OTA_SLOT_STATE. */
  async activate(req: ActivationRequest): Promise<OtaTrial> {
    return this.#serial(async () => {
      const s = this.#current();
      if (s.trial) throw new CitysenseError(OTA_ERRORS.busy, `slot ${s.trial.slot} is already on trial`, 409);
      const info = s.slots[req.slot];
      if (!info || s.active === req.slot)
        throw slotState(`slot ${req.slot} cannot be activated: it is ${info ? 'already active' : 'empty'}`);
      const trial: OtaTrial = {
        slot: req.slot,
        version: info.version,
        campaignId: req.campaignId,
        revision: req.revision,
        sha256: req.sha256,
        activatedAt: new Date().toISOString(),
        boots: 0,
        healthTimeoutSeconds: req.healthTimeoutSeconds,
        previous: s.active,
      };
      await this.#write({ ...s, active: req.slot, trial });
      this.#log.info(
        { slot: req.slot, version: info.version, previous: s.active },
        'slot activated on trial',
      );
      return trial;
    });
  }

  /** Counts one boot of the trial slot; returns the trial (null when there is none). */
  async bootTrial(): Promise<OtaTrial | null> {
    return this.#serial(async () => {
      const s = this.#current();
      if (!s.trial) return null;
      const trial = { ...s.trial, boots: s.trial.boots + 1 };
      await this.#write({ ...s, trial });
      return trial;
    });
  }

  /** The trial passed: its slot becomes the last good one. Returns the outcome to report. */
  async confirm(): Promise<OtaOutcome> {
    return this.#serial(async () => {
      const s = this.#current();
      const trial = s.trial;
      if (!trial) throw slotState('there is no trial to confirm');
      const outcome: OtaOutcome = {
        ...outcomeBase(trial),
        state: 'healthy',
        runningVersion: trial.version,
        slot: trial.slot,
      };
      await this.#write({ ...s, lastGood: trial.slot, trial: null, outcomes: pushOutcome(s, outcome) });
      this.#log.info({ slot: trial.slot, version: trial.version }, 'trial confirmed');
      return outcome;
    });
  }

  /** The trial failed: the previous slot boots again. Returns the outcome to report. */
  async rollback(req: RollbackRequest): Promise<OtaOutcome> {
    return this.#serial(async () => {
      const s = this.#current();
      const trial = s.trial;
      if (!trial) throw slotState('there is no trial to roll back');
      const back = trial.previous;
      const outcome: OtaOutcome = {
        ...outcomeBase(trial),
        state: req.state ?? 'rolled-back',
        code: req.code,
        reason: req.reason,
        runningVersion: back ? (s.slots[back]?.version ?? this.#o.factoryVersion) : this.#o.factoryVersion,
        slot: back,
      };
      await this.#write({ ...s, active: back, trial: null, outcomes: pushOutcome(s, outcome) });
      this.#log.warn(
        { slot: trial.slot, version: trial.version, back: back ?? 'factory', code: req.code },
        'trial rolled back',
      );
      return outcome;
    });
  }

  /**
   * Records the outcome of an update that never went on trial: `failed` before activation
   * (nothing changed on the node), or `healthy` when the node already runs that version.
   */
  async recordOutcome(result: {
    campaignId: string;
    revision: number;
    sha256: string;
    version: string;
    state: 'failed' | 'healthy';
    code?: string | undefined;
    reason?: string | undefined;
  }): Promise<OtaOutcome> {
    return this.#serial(async () => {
      const s = this.#current();
      const { code, reason, ...rest } = result;
      const outcome: OtaOutcome = {
        ...rest,
        ...(code === undefined ? {} : { code }),
        ...(reason === undefined ? {} : { reason }),
        at: new Date().toISOString(),
        runningVersion: this.runningVersion(),
        slot: s.active,
        reported: false,
      };
      await this.#write({ ...s, outcomes: pushOutcome(s, outcome) });
      return outcome;
    });
  }

  /** The recorded outcome of an update (campaign × artifact), if any. */
  outcomeOf(campaignId: string, sha256: string): OtaOutcome | undefined {
    return this.#current().outcomes.find((o) => o.campaignId === campaignId && o.sha256 === sha256);
  }

  /** Notes that the hub has taken the report of an outcome. */
  async markReported(campaignId: string, sha256: string): Promise<void> {
    await this.#serial(async () => {
      const s = this.#current();
      if (!s.outcomes.some((o) => o.campaignId === campaignId && o.sha256 === sha256 && !o.reported)) return;
      const outcomes = s.outcomes.map((o) =>
        o.campaignId === campaignId && o.sha256 === sha256 ? { ...o, reported: true } : o,
      );
      await this.#write({ ...s, outcomes });
    });
  }

  get #statePath(): string {
    return join(this.dir, 'slots.json');
  }

  #current(): SlotsState {
    if (!this.#state) throw slotState(`slot store ${this.dir} is not open`);
    return this.#state;
  }

  async #write(next: SlotsState): Promise<void> {
    await writeFileAtomic(this.#statePath, `${JSON.stringify(next, null, 2)}\n`);
    this.#state = next;
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(work, work);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Deletes crash debris and makes the state name only slots whose directories exist. */
  async #recover(): Promise<void> {
    let s = this.#current();
    for (const entry of await readdir(this.dir)) {
      if (entry.startsWith('.staging-') || entry.endsWith('.tmp')) {
        this.#log.info({ entry }, 'removing debris of an interrupted OTA step');
        await rm(join(this.dir, entry), { recursive: true, force: true });
      }
    }
    for (const slot of SLOT_NAMES) {
      const exists = await stat(this.slotPath(slot)).then(
        (st) => st.isDirectory(),
        () => false,
      );
      if (s.slots[slot] === null && exists) {
        // Half written, or the content of a slot the state already gave up.
        await rm(this.slotPath(slot), { recursive: true, force: true });
      } else if (s.slots[slot] !== null && !exists) {
        this.#log.error({ slot }, 'slot directory is missing; marking the slot empty');
        const back = (x: SlotName | null) => (x === slot ? null : x);
        s = {
          ...s,
          slots: { ...s.slots, [slot]: null },
          active: back(s.active),
          lastGood: back(s.lastGood),
          trial: s.trial?.slot === slot ? null : s.trial,
        };
        await this.#write(s);
      }
    }
  }
}

/**
 * Reads a target's slots.json without changing anything (no recovery): for status pages
 * and tools that look while the agent runs. A missing file is the factory state. Throws
 * CS_ERR_OTA_SLOT_STATE when it is not a slot state.
 */
export async function readSlotsState(stateDir: string, target: OtaTarget): Promise<SlotsState> {
  const path = join(stateDir, 'ota', target, 'slots.json');
  const text = await readFileIfExists(path);
  if (text === null) return emptyState(target);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw slotState(`${path} is not JSON; move it away to start from the factory install`);
  }
  const first = Value.Errors(SlotsStateSchema, parsed).First();
  if (first) throw slotState(`${path} is invalid at ${first.path || '/'}: ${first.message}`);
  const state = parsed as SlotsState;
  if (state.target !== target) throw slotState(`${path} belongs to target ${state.target}, not ${target}`);
  return state;
}

/** A state with nothing installed: the factory install boots. */
function emptyState(target: OtaTarget): SlotsState {
  return {
    format: 1,
    target,
    active: null,
    lastGood: null,
    slots: { a: null, b: null },
    trial: null,
    outcomes: [],
  };
}

function outcomeBase(trial: OtaTrial): Omit<OtaOutcome, 'state' | 'runningVersion' | 'slot'> {
  return {
    campaignId: trial.campaignId,
    revision: trial.revision,
    sha256: trial.sha256,
    version: trial.version,
    at: new Date().toISOString(),
    reported: false,
  };
}

function pushOutcome(s: SlotsState, outcome: OtaOutcome): OtaOutcome[] {
  const others = s.outcomes.filter(
    (o) => !(o.campaignId === outcome.campaignId && o.sha256 === outcome.sha256),
  );
  return [...others, outcome].slice(-MAX_OUTCOMES);
}

async function statfsFree(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}

/**
 * Lists an agent bundle without extracting it: the bytes it will take, and that it is a
 * tar.gz with the entry point and no escaping paths. Throws CS_ERR_OTA_BUNDLE_INVALID.
 */
export async function bundleBytes(path: string): Promise<number> {
  let bytes = 0;
  let hasEntry = false;
  const unsafe: string[] = [];
  try {
    await listTar({
      file: path,
      strict: true,
      onReadEntry: (entry) => {
        bytes += entry.size ?? 0;
        const p = entry.path.replace(/^\.\//, '');
        if (p === BUNDLE_ENTRY) hasEntry = true;
        if (p.startsWith('/') || p.split('/').includes('..')) unsafe.push(entry.path);
      },
    });
  } catch (err) {
    throw bundleInvalid(`it is not a readable .tar.gz (${errorMessage(err)})`);
  }
  if (unsafe.length > 0)
    throw bundleInvalid(`it has paths outside its directory: ${unsafe.slice(0, 3).join(', ')}`);
  if (!hasEntry) throw bundleInvalid(`it has no ${BUNDLE_ENTRY}, the entry point the supervisor runs`);
  return bytes;
}

async function extractBundle(payloadPath: string, into: string): Promise<void> {
  try {
    await extractTar({ file: payloadPath, cwd: into, strict: true, preservePaths: false });
  } catch (err) {
    throw bundleInvalid(`extracting it failed (${errorMessage(err)})`);
  }
  await fsyncTree(into);
}

/** Fsyncs every file and directory under `dir`, so that a power cut after the rename finds the slot whole. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await fsyncTree(path);
      await syncDir(path);
    } else if (entry.isFile()) await fsyncFile(path);
  }
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function bundleInvalid(why: string): CitysenseError {
  return new CitysenseError(OTA_ERRORS.bundle, `agent bundle is invalid: ${why}`, 400);
}

function slotState(message: string): CitysenseError {
  return new CitysenseError(OTA_ERRORS.slotState, message, 409);
}
