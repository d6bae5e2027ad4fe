import { keyFingerprint } from '@citysense/algorithms';
import {
  assertPublicKey,
  CitysenseError,
  errorMessage,
  type SignatureAlgorithm,
  type SigningKey,
} from '@citysense/protocol';
import type { Database } from '../storage/database.ts';

/** Name under which the centre's own key is registered. */
export const CENTRE_SIGNER = 'centre';

/** A key whose packages the centre accepts. */
export interface AlgorithmSigner {
  name: string;
  algorithm: SignatureAlgorithm;
  publicKey: string;
  fingerprint: string;
  builtin: boolean;
  createdAt: Date;
}

interface SignerRow {
  name: string;
  algorithm: SignatureAlgorithm;
  public_key: string;
  fingerprint: string;
  builtin: boolean;
  created_at: Date;
}

const toSigner = (r: SignerRow): AlgorithmSigner => ({
  name: r.name,
  algorithm: r.algorithm,
  publicKey: r.public_key,
  fingerprint: r.fingerprint,
  builtin: r.builtin,
  createdAt: new Date(r.created_at),
});

/** Ed25519 keys are PEM with a final newline; SM2 keys lower-case hex, as `algo keygen` writes them. */
function normalisePublicKey(algorithm: SignatureAlgorithm, publicKey: string): string {
  const trimmed = publicKey.trim();
  return algorithm === 'ed25519' ? `${trimmed}\n` : trimmed.toLowerCase();
}

/** The trusted signers of algorithm packages: the centre's own key plus keys the admin adds. */
export class SignerStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Registers the centre's key as the built-in signer `centre`. When `centre` held
   * another key (rotated, or another hub on the same database with its own data
   * dir), that key stays trusted as `centre-previous-<fingerprint>` so that the
   * packages it signed still validate; returns that name.
   */
  async registerCentre(key: SigningKey): Promise<string | null> {
    const publicKey = normalisePublicKey(key.algorithm, key.publicKey);
    const fingerprint = keyFingerprint(publicKey);
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<{ fingerprint: string }>(
        'SELECT fingerprint FROM algorithm_signers WHERE name = $1 FOR UPDATE',
        [CENTRE_SIGNER],
      );
      const previous = rows[0]?.fingerprint;
      let kept: string | null = null;
      if (previous !== undefined && previous !== fingerprint) {
        kept = `${CENTRE_SIGNER}-previous-${previous.replace(/^sha256:/, '').slice(0, 8)}`;
        await tx.query('UPDATE algorithm_signers SET name = $2, builtin = false WHERE name = $1', [
          CENTRE_SIGNER,
          kept,
        ]);
      }
      // The same key added by hand under another name would collide on the fingerprint.
      await tx.query('DELETE FROM algorithm_signers WHERE fingerprint = $1 AND name <> $2', [
        fingerprint,
        CENTRE_SIGNER,
      ]);
      await tx.query(
        `INSERT INTO algorithm_signers (name, algorithm, public_key, fingerprint, builtin)
         VALUES ($1, $2, $3, $4, true)
         ON CONFLICT (name) DO UPDATE SET algorithm = $2, public_key = $3, fingerprint = $4, builtin = true`,
        [CENTRE_SIGNER, key.algorithm, publicKey, fingerprint],
      );
      return kept;
    });
  }

  /** Adds a trusted signer; throws CS_ERR_ALGO_SIGNER_KEY / CS_ERR_ALGO_SIGNER_EXISTS. */
  async add(name: string, algorithm: SignatureAlgorithm, publicKey: string): Promise<AlgorithmSigner> {
    const key = normalisePublicKey(algorithm, publicKey);
    try {
      assertPublicKey(algorithm, key);
    } catch (err) {
      throw new CitysenseError('CS_ERR_ALGO_SIGNER_KEY', errorMessage(err), 400);
    }
    const fingerprint = keyFingerprint(key);
    const { rows: existing } = await this.#db.query<{ name: string }>(
      'SELECT name FROM algorithm_signers WHERE name = $1 OR fingerprint = $2',
      [name, fingerprint],
    );
    const clash = existing[0];
    if (clash)
      throw new CitysenseError(
        'CS_ERR_ALGO_SIGNER_EXISTS',
        clash.name === name
          ? `signer ${name} already exists: delete it first to change its key`
          : `this key is already trusted as signer ${clash.name}`,
        409,
      );
    const { rows } = await this.#db.query<SignerRow>(
      `INSERT INTO algorithm_signers (name, algorithm, public_key, fingerprint) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING
       RETURNING name, algorithm, public_key, fingerprint, builtin, created_at`,
      [name, algorithm, key, fingerprint],
    );
    const row = rows[0];
    if (!row)
      throw new CitysenseError('CS_ERR_ALGO_SIGNER_EXISTS', `signer ${name} or its key was just added`, 409);
    return toSigner(row);
  }

  /** Lists signers, the centre first. */
  async list(): Promise<AlgorithmSigner[]> {
    const { rows } = await this.#db.query<SignerRow>(
      `SELECT name, algorithm, public_key, fingerprint, builtin, created_at FROM algorithm_signers
        ORDER BY builtin DESC, name`,
    );
    return rows.map(toSigner);
  }

  /** Removes a signer: packages it signed that are already stored stay; new ones are refused. */
  async remove(name: string): Promise<void> {
    const { rows } = await this.#db.query<{ builtin: boolean }>(
      'SELECT builtin FROM algorithm_signers WHERE name = $1',
      [name],
    );
    const row = rows[0];
    if (!row) throw new CitysenseError('CS_ERR_ALGO_SIGNER_UNKNOWN', `no trusted signer named ${name}`, 404);
    if (row.builtin)
      throw new CitysenseError(
        'CS_ERR_ALGO_SIGNER_BUILTIN',
        `signer ${name} is the centre's own key and cannot be removed`,
        409,
      );
    await this.#db.query('DELETE FROM algorithm_signers WHERE name = $1 AND NOT builtin', [name]);
  }

  /** Public keys a package may be signed with. */
  async trustedKeys(): Promise<string[]> {
    return (await this.list()).map((s) => s.publicKey);
  }

  /** The signer holding the key with `fingerprint`, if it is trusted. */
  async byFingerprint(fingerprint: string): Promise<AlgorithmSigner | undefined> {
    const { rows } = await this.#db.query<SignerRow>(
      `SELECT name, algorithm, public_key, fingerprint, builtin, created_at FROM algorithm_signers
        WHERE fingerprint = $1`,
      [fingerprint],
    );
    const row = rows[0];
    return row ? toSigner(row) : undefined;
  }
}
