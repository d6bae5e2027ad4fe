/**
 * One waiter for MANSCDP queries (STYLE.md: request/response over async transports goes
 * through one waiter with a timeout). A query is answered by a MESSAGE of its own that
 * carries the same SN (GB/T 28181-2016 §9.5.2); Catalog answers come in pages that are
 * collected until SumNum items arrived.
 */
import { CatalogAssembler, type CatalogItem, CitysenseError, type ManscdpMessage } from '@citysense/protocol';

/** Query kinds the platform sends. */
export type QueryCmd = 'Catalog' | 'DeviceInfo' | 'DeviceStatus';

type Answer =
  | Exclude<ManscdpMessage, { kind: 'unknown' | 'keepalive' | 'alarm' }>
  | { kind: 'catalogDone'; items: CatalogItem[] };

interface Pending {
  cmd: QueryCmd;
  resolve: (answer: Answer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  catalog: CatalogAssembler | undefined;
}

const KIND_OF: Readonly<Record<string, QueryCmd>> = {
  catalog: 'Catalog',
  deviceInfo: 'DeviceInfo',
  deviceStatus: 'DeviceStatus',
};

/** Pending queries keyed by device, command and SN. */
export class QueryWaiter {
  readonly #pending = new Map<string, Pending>();
  #sn = Math.floor(Math.random() * 100_000);

  /** The next SN: unique among pending queries, wrapping below 10 digits. */
  nextSn(): number {
    this.#sn = (this.#sn % 999_999_999) + 1;
    return this.#sn;
  }

  /** Number of queries waiting. */
  get size(): number {
    return this.#pending.size;
  }

  /** Waits for the answer to a query sent with `sn`; rejects CS_ERR_GB_QUERY_TIMEOUT after `timeoutMs`. */
  wait(deviceId: string, cmd: QueryCmd, sn: number, timeoutMs: number): Promise<Answer> {
    const key = `${deviceId}|${cmd}|${sn}`;
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(key);
        const got = pending.catalog
          ? ` (${pending.catalog.items.length} of ${pending.catalog.sumNum ?? '?'} items arrived)`
          : '';
        reject(
          new CitysenseError(
            'CS_ERR_GB_QUERY_TIMEOUT',
            `${deviceId} did not answer ${cmd} SN ${sn} within ${timeoutMs} ms${got}`,
            504,
          ),
        );
      }, timeoutMs);
      const pending: Pending = {
        cmd,
        resolve,
        reject,
        timer,
        catalog: cmd === 'Catalog' ? new CatalogAssembler(deviceId, sn) : undefined,
      };
      this.#pending.set(key, pending);
    });
  }

  /** Offers a received answer; true when a pending query took it. */
  offer(message: ManscdpMessage): boolean {
    if (message.kind === 'unknown' || message.kind === 'keepalive' || message.kind === 'alarm') return false;
    const cmd = KIND_OF[message.kind];
    if (!cmd) return false;
    const key = `${message.deviceId}|${cmd}|${message.sn}`;
    const pending = this.#pending.get(key);
    if (!pending) return false;
    if (message.kind === 'catalog' && pending.catalog) {
      try {
        pending.catalog.add(message);
      } catch (err) {
        this.#finish(key, pending, err as Error);
        return true;
      }
      if (pending.catalog.complete)
        this.#finish(key, pending, { kind: 'catalogDone', items: pending.catalog.items });
      return true;
    }
    this.#finish(key, pending, message);
    return true;
  }

  #finish(key: string, pending: Pending, outcome: Answer | Error): void {
    this.#pending.delete(key);
    clearTimeout(pending.timer);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  /** Fails one pending query (its MESSAGE was refused); unknown keys are ignored. */
  cancel(deviceId: string, cmd: QueryCmd, sn: number, reason: Error): void {
    const key = `${deviceId}|${cmd}|${sn}`;
    const pending = this.#pending.get(key);
    if (pending) this.#finish(key, pending, reason);
  }

  /** Fails every pending query (platform stopping). */
  cancelAll(reason: Error): void {
    for (const [key, pending] of this.#pending) this.#finish(key, pending, reason);
  }
}
