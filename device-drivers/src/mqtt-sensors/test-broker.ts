/**
 * An in-process Aedes broker on a TCP port, for tests: port 0 picks a free port, and `restart`
 * brings it back on the same port so that clients can reconnect. Tests only; not exported.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';

/** A broker a test can stop and start again on the same port. */
export class TestBroker {
  #aedes: Aedes | undefined;
  #server: Server | undefined;
  #port = 0;

  /** The bound port (after `start`). */
  get port(): number {
    return this.#port;
  }

  /** `mqtt://127.0.0.1:<port>`. */
  get url(): string {
    return `mqtt://127.0.0.1:${this.#port}`;
  }

  /** Listens on the last port, or a free one the first time. Idempotent. */
  async start(): Promise<void> {
    if (this.#server) return;
    const aedes = await Aedes.createBroker();
    const server = createServer(aedes.handle);
    server.listen(this.#port, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address && typeof address === 'object') this.#port = address.port;
    this.#aedes = aedes;
    this.#server = server;
  }

  /** Drops every client and stops listening. Idempotent. */
  async stop(): Promise<void> {
    const aedes = this.#aedes;
    const server = this.#server;
    this.#aedes = undefined;
    this.#server = undefined;
    if (!aedes || !server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await closed;
  }
}
