/**
 * The remote configuration the node runs, persisted in `<stateDir>/remote-config.json`
 * (atomic writes): the current version and document, and the last good one kept for
 * a rollback. `applying` is set while a new version is on probation; if the agent
 * dies before the health check passed, the next start goes back to the last good one.
 */
import { join } from 'node:path';
import { CitysenseError, type RemoteConfig, RemoteConfigSchema } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readFileIfExists, writeFileAtomic } from '../state-file.ts';

/** A configuration with its version (null: the node's own file, never pushed). */
export interface VersionedConfig {
  version: number | null;
  config: RemoteConfig;
}

/** What the file holds. */
export interface RemoteConfigState {
  current: VersionedConfig | null;
  lastGood: VersionedConfig | null;
  /** True while `current` has not yet proved healthy. */
  applying: boolean;
}

const Versioned = Type.Object({
  version: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  config: RemoteConfigSchema,
});
const StateSchema = Type.Object({
  current: Type.Union([Versioned, Type.Null()]),
  lastGood: Type.Union([Versioned, Type.Null()]),
  applying: Type.Boolean(),
});

const EMPTY: RemoteConfigState = { current: null, lastGood: null, applying: false };

/** Reads and writes `remote-config.json`. */
export class RemoteConfigStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'remote-config.json');
  }

  /** The stored state; an empty one when there is no file. A corrupt file is CS_ERR_CONFIG_STATE_CORRUPT. */
  async load(): Promise<RemoteConfigState> {
    const text = await readFileIfExists(this.path);
    if (text === null) return { ...EMPTY };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (!Value.Check(StateSchema, value))
      throw new CitysenseError(
        'CS_ERR_CONFIG_STATE_CORRUPT',
        `${this.path} is not a valid remote configuration state: remove it to run the local configuration`,
        500,
      );
    return value;
  }

  /** Replaces the stored state. */
  async save(state: RemoteConfigState): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(state, null, 2)}\n`);
  }

  /**
   * What the agent should run at start: the current version, or the last good one when
   * the agent died while a new version was on probation (the file is updated to say so).
   */
  async forStart(): Promise<VersionedConfig | null> {
    const state = await this.load();
    if (state.applying && state.lastGood) {
      await this.save({ current: state.lastGood, lastGood: null, applying: false });
      return state.lastGood;
    }
    if (state.applying) await this.save({ ...state, applying: false });
    return state.current;
  }
}
