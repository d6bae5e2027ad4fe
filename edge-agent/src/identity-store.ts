import { join } from 'node:path';
import { CitysenseError, errorMessage } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readFileIfExists, writeFileAtomic } from './state-file.ts';

/** What a node keeps after enrolment so that restarts need no token. */
export const NodeIdentity = Type.Object({
  version: Type.Literal(1),
  nodeId: Type.String({ minLength: 1 }),
  groupId: Type.String({ minLength: 1 }),
  hubId: Type.String({ minLength: 1 }),
  hubUrl: Type.String({ minLength: 1 }),
  publicKey: Type.String({ minLength: 1 }),
  privateKey: Type.String({ minLength: 1 }),
  mqtt: Type.Object({
    url: Type.String({ minLength: 1 }),
    username: Type.String(),
    password: Type.String(),
    clientId: Type.String({ minLength: 1 }),
  }),
  enrolledAt: Type.String(),
});
/** What a node keeps after enrolment so that restarts need no token. */
export type NodeIdentity = Static<typeof NodeIdentity>;

/** File name of the identity inside the state dir. */
export const IDENTITY_FILE = 'identity.json';

/** Reads and writes `{stateDir}/identity.json` (mode 0600: it holds the private key and MQTT password). */
export class IdentityStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, IDENTITY_FILE);
  }

  /** The stored identity, or null when the box was never enrolled. Throws CS_ERR_IDENTITY_CORRUPT on a bad file. */
  async load(): Promise<NodeIdentity | null> {
    const text = await readFileIfExists(this.path);
    if (text === null) return null;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw this.#corrupt(errorMessage(err));
    }
    const first = Value.Errors(NodeIdentity, value).First();
    if (first) throw this.#corrupt(`${first.path || '/'} ${first.message}`);
    return value as NodeIdentity;
  }

  /** Stores `identity` atomically with mode 0600. */
  async save(identity: NodeIdentity): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(identity, null, 2)}\n`, 0o600);
  }

  #corrupt(why: string): CitysenseError {
    return new CitysenseError(
      'CS_ERR_IDENTITY_CORRUPT',
      `${this.path} is unreadable (${why}): restore it from backup, or delete it and enrol again with a replacement token`,
      500,
    );
  }
}
