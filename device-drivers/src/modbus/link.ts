/**
 * One Modbus TCP connection (modbus-serial's client) and the waiter every request goes through: each
 * request carries the timeout of the unit it addresses, so one silent unit behind a gateway costs its
 * own polls only, and a lost connection fails every request in flight at once instead of letting each
 * run into its timeout. Requests are pipelined by MBAP transaction id (Modbus Messaging on TCP/IP v1.0b
 * §3.1.3), so units answer independently.
 */
import { CitysenseError, errorMessage, type Logger } from '@citysense/protocol';
import ModbusSerial from 'modbus-serial';
import type { ModbusTable } from './codec.ts';
import { MODBUS_ERRORS, ModbusExceptionError } from './errors.ts';

/** How to reach the server. */
export interface ModbusLinkInit {
  host: string;
  port: number;
  connectTimeoutMs: number;
  log: Logger;
  /** Called once when an open connection is lost (not on `close`). */
  onLost: (reason: string) => void;
}

// A CommonJS module: its class is module.exports, reachable as `.default` under NodeNext typings.
const ModbusClient = ModbusSerial.default;
type ModbusClient = InstanceType<typeof ModbusClient>;

type Done = (err: unknown, result?: unknown) => void;

/** A Modbus TCP connection that answers reads and writes or fails them with a coded error. */
export class ModbusLink {
  readonly #init: ModbusLinkInit;
  #client: ModbusClient | undefined;
  readonly #pending = new Set<(err: CitysenseError) => void>();

  constructor(init: ModbusLinkInit) {
    this.#init = init;
  }

  /** True while a connection is open. */
  get isOpen(): boolean {
    return this.#client?.isOpen === true;
  }

  /**
   * Opens the connection; rejects with CS_ERR_MODBUS_UNREACHABLE when refused, too slow or aborted by
   * `signal` (then nothing stays open).
   */
  async connect(signal: AbortSignal): Promise<void> {
    await this.close();
    const { host, port, connectTimeoutMs } = this.#init;
    const client = new ModbusClient();
    // Without a listener an 'error' event would throw out of the socket's callback.
    client.on('error', (err: unknown) =>
      this.#init.log.debug({ err: errorMessage(err) }, 'modbus socket error'),
    );
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        client.connectTCP(host, { port }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${connectTimeoutMs} ms`)),
            connectTimeoutMs,
          );
          onAbort = () => reject(new Error('the driver is stopping'));
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } catch (err) {
      client.destroy(() => undefined);
      throw new CitysenseError(
        MODBUS_ERRORS.unreachable,
        `Modbus server ${host}:${port} is unreachable (${errorMessage(err)}): check that it runs and that host and port are right`,
        502,
      );
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
    // modbus-serial relays 'close' only when the socket closes cleanly: after a reset ('error' first)
    // it stays silent, so both events, and a request that finds the client closed, count as a loss.
    client.on('close', () => this.#dropped(client));
    client.on('error', () => this.#dropped(client));
    this.#client = client;
  }

  /** Forgets `client` once it is found lost, fails what it carried and tells the owner; idempotent. */
  #dropped(client: ModbusClient): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    const { host, port } = this.#init;
    this.#failPending(`the connection to ${host}:${port} was lost`);
    client.destroy(() => undefined);
    this.#init.onLost('connection lost');
  }

  /** Closes the connection, failing requests in flight; idempotent. */
  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#failPending('the driver closed the connection');
    if (!client) return;
    await new Promise<void>((resolve) => client.destroy(() => resolve()));
  }

  /** Reads `count` registers or bits of `table` from `unit`. */
  read(
    unit: number,
    table: ModbusTable,
    address: number,
    count: number,
    timeoutMs: number,
  ): Promise<number[] | boolean[]> {
    const what = `unit ${unit} ${table} ${address}–${address + count - 1}`;
    return this.#request(what, timeoutMs, (client, done) => {
      if (table === 'holding') client.writeFC3(unit, address, count, done);
      else if (table === 'input') client.writeFC4(unit, address, count, done);
      else if (table === 'coil') client.writeFC1(unit, address, count, done);
      else client.writeFC2(unit, address, count, done);
    }).then((result) => {
      const data = ((result as { data?: unknown } | undefined)?.data ?? []) as number[] | boolean[];
      // Bit reads come back padded to whole bytes.
      return data.slice(0, count) as number[] | boolean[];
    });
  }

  /** Writes holding registers (FC6 for one, FC16 for several). */
  async writeRegisters(unit: number, address: number, words: number[], timeoutMs: number): Promise<void> {
    const what = `unit ${unit} holding ${address}–${address + words.length - 1}`;
    await this.#request(what, timeoutMs, (client, done) => {
      const first = words[0];
      if (words.length === 1 && first !== undefined) client.writeFC6(unit, address, first, done);
      else client.writeFC16(unit, address, words, done);
    });
  }

  /** Writes one coil (FC5). */
  async writeCoil(unit: number, address: number, value: boolean, timeoutMs: number): Promise<void> {
    await this.#request(`unit ${unit} coil ${address}`, timeoutMs, (client, done) =>
      client.writeFC5(unit, address, value, done),
    );
  }

  /** The one waiter: sends with `send`, settles once on answer, exception, timeout or lost connection. */
  #request(
    what: string,
    timeoutMs: number,
    send: (client: ModbusClient, done: Done) => void,
  ): Promise<unknown> {
    const client = this.#client;
    if (client && !client.isOpen) this.#dropped(client);
    if (!client?.isOpen) return Promise.reject(this.#unreachable(`${what} not sent: not connected`));
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: CitysenseError | undefined, result?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(fail);
        if (err) reject(err);
        else resolve(result);
      };
      const fail = (err: CitysenseError): void => settle(err);
      const timer = setTimeout(
        () =>
          settle(
            new CitysenseError(
              MODBUS_ERRORS.timeout,
              `${what} did not answer within ${timeoutMs} ms: check the unit id, its wiring behind the gateway and its power`,
              504,
            ),
          ),
        timeoutMs,
      );
      this.#pending.add(fail);
      // The client's own timeout is read when the request is written, synchronously below, so it is
      // per request; it only frees the client's transaction slot, the timer above decides.
      client.setTimeout(timeoutMs + 1000);
      try {
        send(client, (err, result) =>
          settle(err === null || err === undefined ? undefined : this.#classify(what, err), result),
        );
      } catch (err) {
        settle(this.#classify(what, err));
      }
    });
  }

  #classify(what: string, err: unknown): CitysenseError {
    const code = (err as { modbusCode?: unknown }).modbusCode;
    if (typeof code === 'number') return new ModbusExceptionError(code, what);
    const name = (err as { name?: unknown }).name;
    if (name === 'TransactionTimedOutError')
      return new CitysenseError(MODBUS_ERRORS.timeout, `${what} did not answer`, 504);
    if (name === 'PortNotOpenError' || !this.isOpen)
      return this.#unreachable(`${what} failed: ${errorMessage(err)}`);
    return new CitysenseError(
      MODBUS_ERRORS.exception,
      `${what} gave a malformed answer (${errorMessage(err)}): check that the server speaks Modbus TCP`,
      502,
    );
  }

  #unreachable(message: string): CitysenseError {
    return new CitysenseError(MODBUS_ERRORS.unreachable, message, 502);
  }

  #failPending(reason: string): void {
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const fail of pending) fail(this.#unreachable(reason));
  }
}
