/**
 * The runtime obeys the ledger (001 Art. 45): "may device CODE send data now?", answered
 * from memory for every REGISTER and every Sparkplug message, never by a query per message.
 *
 * States that admit: `approved` and `installed` (commissioning: a device is installed and
 * tested on the street before it goes live, and the field engineer must see its video and
 * readings to do that), `active`, and `maintenance` (a device under repair keeps its place
 * in the city's data; it is not a new build). States that refuse: `proposed`, `in-review`
 * (not yet decided by the joint review), `retired` (taken out of service), and a 20-digit
 * code the ledger does not hold.
 *
 * The cache holds code → state and owner agency for every ledger device. It is loaded at
 * start, then kept current from the ledger's change feed (the filing chain): this hub's
 * writes trigger a catch-up at once (`LedgerService.onFiled`), other hubs' writes are seen
 * by polling the feed every `pollMs`. Each chain entry carries the whole device after the
 * change, so applying entries in seq order leaves every device in its latest state.
 *
 * `enforce` (config `ledger.enforce`):
 * - `off`: the ledger is not consulted; video admission is the `/v1/video/devices` list or
 *   auto-accept, as before the ledger existed.
 * - `video` (default): a GB/T 28181 device with a ledger entry registers when the entry
 *   admits, whatever the list says; a device without an entry falls back to the list or
 *   auto-accept (installations without a ledger keep working).
 * - `all`: as `video`, and Sparkplug values of a device whose id is a ledger code (the
 *   naming rule of the catalogue: a ledger device's readings are the series whose
 *   Sparkplug device id is its unified code) are dropped unless the entry admits. Device
 *   ids that are not 20-digit GB/T 28181 codes are not governed and pass unchanged.
 *
 * Every refusal is counted per channel and code (`citysense_ledger_refused_total`) and
 * recorded per device (`RefusalLog`) so that the owner agency sees why.
 */
import { componentLogger, errorMessage, isGbId, type Logger } from '@citysense/protocol';
import type { LedgerService } from '../ledger/ledger-service.ts';
import type { DeviceState } from '../ledger/ledger-store.ts';
import type { RefusalChannel, RefusalLog } from './refusal-log.ts';

/** How far the runtime obeys the ledger (config `ledger.enforce`). */
export type EnforceMode = 'off' | 'video' | 'all';

/** Ledger states whose devices may send data (see the module comment for why). */
export const ADMITTED_STATES: ReadonlySet<DeviceState> = new Set<DeviceState>([
  'approved',
  'installed',
  'active',
  'maintenance',
]);

/** Refusal code of a device whose ledger entry is not in an admitted state. */
export const LEDGER_NOT_ACTIVE = 'CS_ERR_LEDGER_NOT_ACTIVE';
/** Refusal code of a ledger-shaped device id the ledger does not hold (sensors, `enforce: all`). */
export const LEDGER_UNKNOWN = 'CS_ERR_LEDGER_DEVICE_UNKNOWN';

/** What the ledger says about one device now. */
export type LedgerVerdict =
  | { admitted: true; state: DeviceState; ownerAgency: string }
  | { admitted: false; state: DeviceState | null; ownerAgency: string | null; code: string; reason: string };

/** Options of the admission. */
export interface LedgerAdmissionOptions {
  ledger: LedgerService;
  refusals: RefusalLog;
  enforce: EnforceMode;
  /** How often the change feed is read for other hubs' writes, ms (default 5000). */
  pollMs?: number;
  logger?: Logger | undefined;
}

/** Chain entries read per page of the change feed. */
const FEED_PAGE = 1000;
/** Device rows read per page at start. */
const LOAD_PAGE = 5000;

/** The ledger's answer to "may this device send data now?", from memory. */
export class LedgerAdmission {
  readonly #o: LedgerAdmissionOptions;
  readonly #log: Logger;
  readonly #devices = new Map<string, { state: DeviceState; ownerAgency: string }>();
  readonly #totals = new Map<string, { channel: RefusalChannel; code: string; count: number }>();
  #cursor = 0;
  #refreshing: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #started = false;

  constructor(options: LedgerAdmissionOptions) {
    this.#o = options;
    this.#log = componentLogger('ledger-admission', options.logger);
  }

  /** The configured mode. */
  get enforce(): EnforceMode {
    return this.#o.enforce;
  }

  /** Loads every device's state and follows the change feed. Idempotent; does nothing when `off`. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#o.enforce === 'off') return;
    const store = this.#o.ledger.store;
    // Head first: entries filed while the table is paged are applied after it, in order.
    this.#cursor = (await store.head()).seq;
    for (let after = ''; ; ) {
      const page = await store.devicePage(after, LOAD_PAGE);
      for (const d of page) this.#devices.set(d.code, { state: d.state, ownerAgency: d.ownerAgency });
      const last = page.at(-1);
      if (!last || page.length < LOAD_PAGE) break;
      after = last.code;
    }
    await this.refresh();
    this.#unsubscribe = this.#o.ledger.onFiled((seq) => {
      if (seq > this.#cursor) void this.refresh();
    });
    this.#timer = setInterval(() => void this.refresh(), this.#o.pollMs ?? 5000);
    this.#timer.unref();
    this.#log.info({ devices: this.#devices.size, enforce: this.#o.enforce }, 'ledger admission loaded');
  }

  /** Reads the change feed up to its end; concurrent calls share one read. Resolves when current. */
  refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.#again = false;
          await this.#catchUp();
        } while (this.#again);
      } catch (err) {
        this.#log.warn(
          { err: errorMessage(err), cursor: this.#cursor },
          'ledger change feed not read; retrying',
        );
      } finally {
        this.#refreshing = undefined;
      }
    };
    this.#refreshing = run();
    return this.#refreshing;
  }

  /** Waits until every ledger change filed so far is applied (tests, and before answering an owner). */
  settled(): Promise<void> {
    return this.#o.enforce === 'off' ? Promise.resolve() : this.refresh();
  }

  /** What the ledger says about `code` now (from memory). */
  verdict(code: string): LedgerVerdict {
    const d = this.#devices.get(code);
    if (!d)
      return {
        admitted: false,
        state: null,
        ownerAgency: null,
        code: LEDGER_UNKNOWN,
        reason: `device ${code} is not in the ledger: register it (POST /v1/ledger/devices) and take it through joint review`,
      };
    if (ADMITTED_STATES.has(d.state)) return { admitted: true, state: d.state, ownerAgency: d.ownerAgency };
    return {
      admitted: false,
      state: d.state,
      ownerAgency: d.ownerAgency,
      code: LEDGER_NOT_ACTIVE,
      reason:
        d.state === 'retired'
          ? `device ${code} is retired in the ledger: a retired device sends no data; register its replacement`
          : `device ${code} is ${d.state} in the ledger: data are accepted once its joint-review project is approved (approved, installed, active or maintenance)`,
    };
  }

  /**
   * GB/T 28181 registrar's question: `admit` or `refuse` when the ledger decides, undefined
   * when it has no say (enforcement off, or no entry: the video list and auto-accept decide).
   */
  videoVerdict(deviceId: string): 'admit' | 'refuse' | undefined {
    if (this.#o.enforce === 'off') return undefined;
    const d = this.#devices.get(deviceId);
    if (!d) return undefined;
    return ADMITTED_STATES.has(d.state) ? 'admit' : 'refuse';
  }

  /** Records a REGISTER refused because the ledger refuses the device. */
  videoRefused(deviceId: string, source: string): void {
    const v = this.verdict(deviceId);
    if (v.admitted) return;
    this.#count('video', deviceId, v, source, 1);
  }

  /**
   * Whether Sparkplug values of `device` are dropped now: only with `enforce: all`, only for
   * ids that are GB/T 28181 codes (the naming rule), and only when the ledger refuses them.
   */
  sensorRefuses(device: string): boolean {
    if (this.#o.enforce !== 'all' || !isGbId(device)) return false;
    return !this.verdict(device).admitted;
  }

  /** Records `values` values of `device` sent by edge node `nodeId` and dropped. */
  sensorDropped(device: string, nodeId: string, values: number): void {
    const v = this.verdict(device);
    if (v.admitted || values <= 0) return;
    this.#count('sensor', device, v, `sparkplug node ${nodeId}`, values);
  }

  /** Refusals since start per channel and code, for /metrics. */
  totals(): Array<{ channel: RefusalChannel; code: string; count: number }> {
    return [...this.#totals.values()];
  }

  /** Stops following the feed. Idempotent. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await this.#refreshing;
    this.#started = false;
  }

  #count(
    channel: RefusalChannel,
    deviceCode: string,
    v: Extract<LedgerVerdict, { admitted: false }>,
    source: string,
    count: number,
  ): void {
    const key = `${channel}\u0000${v.code}`;
    const total = this.#totals.get(key);
    if (total) total.count += count;
    else this.#totals.set(key, { channel, code: v.code, count });
    this.#o.refusals.record({
      deviceCode,
      code: v.code,
      channel,
      reason: v.reason,
      source,
      count,
      time: Date.now(),
    });
  }

  async #catchUp(): Promise<void> {
    for (;;) {
      const entries = await this.#o.ledger.store.entries(this.#cursor, FEED_PAGE);
      for (const e of entries) {
        const { device } = JSON.parse(e.content) as {
          device?: { code: string; state: DeviceState; ownerAgency: string };
        };
        if (device) this.#devices.set(device.code, { state: device.state, ownerAgency: device.ownerAgency });
        this.#cursor = e.seq;
      }
      if (entries.length < FEED_PAGE) return;
    }
  }
}
