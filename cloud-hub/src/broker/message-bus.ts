/**
 * How the hub talks MQTT, whichever broker carries it: the embedded Aedes broker
 * (in-process delivery, no socket) or an external broker through a client.
 */

/** A delivered message. `done` must be called once handled: it is the back-pressure signal. */
export type MessageHandler = (topic: string, payload: Buffer, done: () => void) => void;

/** Options of a publish. */
export interface PublishOptions {
  qos?: 0 | 1;
  retain?: boolean;
}

/** The hub's MQTT transport. */
export interface MessageBus {
  /** `embedded` or `external`, for /health. */
  readonly mode: 'embedded' | 'external';
  /**
   * Subscribes the hub to `filter`. With `shared` on an external broker this is an
   * MQTT 5 shared subscription, so that several hub replicas split the messages;
   * otherwise every replica gets every message.
   */
  subscribe(filter: string, handler: MessageHandler, options?: { shared?: boolean }): Promise<void>;
  publish(topic: string, payload: Uint8Array | string, options?: PublishOptions): Promise<void>;
  /** Connected MQTT clients (embedded) or 1/0 for the hub's own link (external). */
  connectedClients(): number;
  /**
   * Closes a node's MQTT sessions opened with a credential that is no longer valid
   * (deregistration, box replacement). No-op on an external broker, which owns node
   * sessions and credentials: see cloud-hub/src/registry/README.md "External broker".
   */
  disconnectNode(nodeId: string): void;
}
