import {
  CitysenseError,
  componentLogger,
  isEd25519PublicKey,
  type Logger,
  type NodeHardware,
  sha256Hex,
  verifyEd25519,
} from '@citysense/protocol';
import type { AuditActor } from '../audit/audit-log.ts';
import type { Database } from '../storage/database.ts';
import type { NodeEnrollment, NodeRegistry, ReplacedBox } from './node-registry.ts';
import type { TokenStore } from './token-store.ts';

/** An enrolment request as the agent sends it. */
export interface EnrollRequest extends NodeEnrollment {
  token: string;
  /** Ed25519 signature, base64, over `${token}\n${publicKey}`: proof that the node holds the key. */
  signature: string;
  /**
   * The node id the box expects to get (optional). With a replacement token it must be
   * the node the token was issued for: a token never moves a box to another node.
   */
  nodeId?: string | undefined;
}

/** What a box replacement changed: the box that left, the box that came, who authorised it. */
export interface BoxReplacement {
  tokenId: string;
  /** Who issued the replacement token; null for tokens issued before this was recorded. */
  issuedBy: AuditActor | null;
  previous: ReplacedBox;
  current: { hardware: Partial<NodeHardware>; agentVersion: string | null; publicKeySha256: string };
}

/** The answer to a successful enrolment. */
export interface EnrollResult {
  nodeId: string;
  groupId: string;
  hubId: string;
  replaced: boolean;
  /** Set when the enrolment replaced a box. */
  replacement: BoxReplacement | null;
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
    const { creds, replacement } = await this.#db.transaction(async (tx) => {
      // A refusal below rolls the transaction back: the token stays usable for the right box.
      const token = await this.#tokens.consume(tx, req.token);
      const nodeId = await this.#registry.chooseNodeId(tx, token);
      if (req.nodeId !== undefined && req.nodeId !== nodeId) {
        throw new CitysenseError(
          'CS_ERR_TOKEN_NODE_MISMATCH',
          token.replacesNode
            ? `this replacement token is for node ${token.replacesNode}, not ${req.nodeId}: ask for a token for ${req.nodeId} (citysense token replace ${req.nodeId})`
            : `this token enrols node ${nodeId}, not ${req.nodeId}: ask for a token for ${req.nodeId}`,
          409,
          { tokenNode: nodeId, requestedNode: req.nodeId },
        );
      }
      await tx.query('UPDATE enrollment_tokens SET used_by_node = $2 WHERE id = $1', [token.id, nodeId]);
      const enrolled = await this.#registry.enroll(tx, nodeId, req, token.replacesNode !== null);
      const current = {
        hardware: req.hardware ?? {},
        agentVersion: req.agentVersion ?? null,
        publicKeySha256: sha256Hex(req.publicKey),
      };
      const swap: BoxReplacement | null = enrolled.replacedBox
        ? { tokenId: token.id, issuedBy: token.issuedBy, previous: enrolled.replacedBox, current }
        : null;
      await this.#registry.recordEvent(tx, {
        nodeId,
        kind: swap ? 'replaced' : 'enrolled',
        actor: token.issuedBy,
        details: swap
          ? { tokenId: token.id, previous: swap.previous, current }
          : { tokenId: token.id, current },
      });
      return { creds: enrolled, replacement: swap };
    });
    // From here the old box's credentials no longer authenticate; the caller closes its sessions.
    this.#registry.activate(creds.nodeId, creds.password);
    const replaced = replacement !== null;
    this.#log.info({ node: creds.nodeId, replaced }, replaced ? 'node box replaced' : 'node enrolled');
    return {
      nodeId: creds.nodeId,
      groupId: creds.groupId,
      hubId: this.#hubId,
      replaced,
      replacement,
      username: creds.username,
      password: creds.password,
    };
  }
}
