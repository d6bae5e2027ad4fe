import { randomBytes } from 'node:crypto';
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import type { MessageBus, MessageHandler, PublishOptions } from './message-bus.ts';
import { topicMatches } from './topic-filter.ts';

/** Options of the external-broker transport. */
export interface ExternalBusOptions {
  /** `mqtt://user:pass@host:1883`, `mqtts://...` or `ws://...`. */
  url: string;
  /** Shared-subscription group: hub replicas in the same group split the messages. */
  shareGroup: string;
  /** Retained message the broker publishes if the hub vanishes (host STATE offline). */
  will?: { topic: string; payload: string };
  logger?: Logger;
}

/**
 * The hub on an external MQTT broker (EMQX, Mosquitto, HiveMQ ...). Subscriptions
 * are MQTT 5 shared subscriptions (`$share/{group}/{filter}`), so several hub
 * replicas split the load; authentication and ACLs of nodes are the broker's job.
 */
export class ExternalBus implements MessageBus {
  readonly mode = 'external' as const;
  readonly #o: ExternalBusOptions;
  readonly #log: Logger;
  readonly #handlers: Array<{ filter: string; handler: MessageHandler }> = [];
  #client: MqttClient | undefined;

  constructor(options: ExternalBusOptions) {
    this.#o = options;
    this.#log = componentLogger('external-bus', options.logger);
  }

  /** Connects; resolves on the first CONNACK, keeps reconnecting afterwards. */
  async start(): Promise<void> {
    if (this.#client) return;
    const client = mqtt.connect(this.#o.url, {
      protocolVersion: 5,
      clientId: `citysense-hub-${randomBytes(4).toString('hex')}`,
      clean: true,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      will: this.#o.will
        ? { topic: this.#o.will.topic, payload: Buffer.from(this.#o.will.payload), qos: 1, retain: true }
        : undefined,
    });
    this.#client = client;
    client.on('message', (topic, payload) => {
      for (const { filter, handler } of this.#handlers) {
        if (topicMatches(filter, topic)) handler(topic, payload, () => {});
      }
    });
    client.on('error', (err) => this.#log.warn({ err: err.message }, 'MQTT error'));
    client.on('reconnect', () => this.#log.info('reconnecting to the MQTT broker'));
    client.on('connect', () =>
      this.#log.info({ url: redact(this.#o.url) }, 'connected to the external MQTT broker'),
    );
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        client.end(true);
        this.#client = undefined;
        reject(new Error(`cannot connect to MQTT broker ${redact(this.#o.url)}: ${errorMessage(err)}`));
      };
      client.once('connect', () => {
        client.off('error', onError);
        resolve();
      });
      client.once('error', onError);
    });
  }

  async stop(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client) await client.endAsync();
  }

  async subscribe(
    filter: string,
    handler: MessageHandler,
    options: { shared?: boolean } = {},
  ): Promise<void> {
    this.#handlers.push({ filter, handler });
    const topic = options.shared ? `$share/${this.#o.shareGroup}/${filter}` : filter;
    await this.#require().subscribeAsync(topic, { qos: 1 });
  }

  async publish(topic: string, payload: Uint8Array | string, options: PublishOptions = {}): Promise<void> {
    await this.#require().publishAsync(topic, typeof payload === 'string' ? payload : Buffer.from(payload), {
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
    });
  }

  connectedClients(): number {
    return this.#client?.connected ? 1 : 0;
  }

  disconnectNode(): void {
    // Sessions on an external broker are the broker's; revoke the node's credentials there.
  }

  #require(): MqttClient {
    if (!this.#client) throw new Error('external MQTT bus is not started');
    return this.#client;
  }
}

/** Hides the password of a URL for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}
