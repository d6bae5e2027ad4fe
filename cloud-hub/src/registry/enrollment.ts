import {
  CitysenseError,
  componentLogger,
  isEd25519PublicKey,
  type Logger,
  verifyEd25519,
} from '@citysense/protocol';
import type { Database } from '../storage/database.ts';
import type { NodeEnrollment, NodeRegistry } from './node-registry.ts';
import type { TokenStore } from './token-store.ts';

/** An enrolment request as the agent sends it. */
export interface EnrollRequest extends NodeEnrollment {
  token: string;
  /** Ed25519 signature, base64, over `${token}\n${publicKey}`: proof that the node holds the key. */
  signature: string;
}

/** The answer to a successful enrolment. */
export interface EnrollResult {
  nodeId: string;
  groupId: string;
  hubId: string;
  replaced: boolean;
}

/** The string a node signs to enrol. */
export function enrollmentChallenge(token: string, publicKey: string): string {
  return `${token}\n${publicKey}`;
}

/**
 * Enrols a node with a one-time token (001 Art. 49(二): edge nodes register with the
 * compute management centre). Token consumption and node creation share one
 * transaction: a token can never yield two identities.
 */
export class EnrollmentService {
  readonly #db: Database;
  readonly #tokens: TokenStore;
  readonly #registry: NodeRegistry;
  readonly #hubId: string;
  readonly #log: Logger;

  constructor(db: Database, tokens: TokenStore, registry: NodeRegistry, hubId: string, logger?: Logger) {
    this.#db = db;
    this.#tokens = tokens;
    this.#registry = registry;
    this.#hubId = hubId;
    this.#log = componentLogger('enrollment', logger);
  }

  /** Enrols; returns the node identity and MQTT credentials. */
  async enroll(req: EnrollRequest): Promise<EnrollResult & { username: string; password: string }> {
    if (!isEd25519PublicKey(req.publicKey)) {
      throw new CitysenseError(
        'CS_ERR_ENROLL_KEY',
        'publicKey must be an Ed25519 public key in SPKI PEM form',
        400,
      );
    }
    if (!verifyEd25519(req.publicKey, enrollmentChallenge(req.token, req.publicKey), req.signature)) {
      throw new CitysenseError(
        'CS_ERR_ENROLL_SIGNATURE',
        'signature does not verify with publicKey over "token\\npublicKey"',
        400,
      );
    }
    let replaced = false;
    const creds = await this.#db.transaction(async (tx) => {
      const token = await this.#tokens.consume(tx, req.token);
      const nodeId = await this.#registry.chooseNodeId(tx, token);
      replaced = token.replacesNode !== null;
      await tx.query('UPDATE enrollment_tokens SET used_by_node = $2 WHERE id = $1', [token.id, nodeId]);
      return this.#registry.enroll(tx, nodeId, req, replaced);
    });
    this.#registry.activate(creds.nodeId, creds.password);
    this.#log.info({ node: creds.nodeId, replaced }, replaced ? 'node box replaced' : 'node enrolled');
    return {
      nodeId: creds.nodeId,
      groupId: creds.groupId,
      hubId: this.#hubId,
      replaced,
      username: creds.username,
      password: creds.password,
    };
  }
}
