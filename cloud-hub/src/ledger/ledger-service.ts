/**
 * The sensor ledger (一套台账, 001 Art. 45): registration with a unified code, the
 * lifecycle, the duplicate-build check, and filing (上链备案) of every change to the
 * hash-chained signed log in the same transaction as the change itself.
 */
import { keyFingerprint } from '@citysense/algorithms';
import {
  CitysenseError,
  componentLogger,
  errorMessage,
  type Logger,
  type SigningKey,
  sha256Hex,
} from '@citysense/protocol';
import type { Database } from '../storage/database.ts';
import {
  type BrokenLink,
  CHAIN_FORMAT,
  ChainVerifier,
  canonicalJson,
  type LedgerEntry,
  makeEntry,
} from './chain.ts';
import type { CsvRecord } from './csv.ts';
import { checkGivenCode, codeOf, codePrefix, isVideoKind, KIND_TYPE_CODES } from './device-codes.ts';
import { CSV_COLUMNS, type DeviceInput, deviceInputFromCsv, type FieldProblem } from './device-input.ts';
import {
  type DeviceFilter,
  type DeviceSnapshot,
  type DeviceState,
  type LedgerDevice,
  LedgerStore,
  type NearbyDevice,
} from './ledger-store.ts';

/** Who asks for a ledger change; recorded in the filed entry. RBAC decides on it later. */
export interface LedgerActor {
  kind: 'admin' | 'user' | 'node' | 'system';
  id: string;
  agencyId?: string;
}

/**
 * Allowed moves. The path proposed → in-review → approved → installed → active →
 * maintenance → retired and maintenance → active, plus: a reviewer can send a device back
 * (in-review → proposed), a proposal or approval can be withdrawn and an active device
 * decommissioned (→ retired).
 */
export const TRANSITIONS: Readonly<Record<DeviceState, readonly DeviceState[]>> = {
  proposed: ['in-review', 'retired'],
  'in-review': ['approved', 'proposed'],
  approved: ['installed', 'retired'],
  installed: ['active'],
  active: ['maintenance', 'retired'],
  maintenance: ['active', 'retired'],
  retired: [],
};

/** A registered device with the standing devices it may duplicate. */
export interface Registered {
  device: LedgerDevice;
  duplicates: NearbyDevice[];
}

/** One rejected row of a bulk registration. */
export interface ImportError {
  /** Line of the CSV file where the row starts (header = 1), or index + 1 of a JSON array item. */
  row: number;
  /** Column (field) at fault; empty when the row as a whole is. */
  column: string;
  code: string;
  message: string;
}

/** What a bulk registration did. */
export interface ImportReport {
  rows: number;
  applied: number;
  failed: number;
  /** Applied rows flagged as possible duplicate builds (they need reuse or justify). */
  flagged: number;
  errors: ImportError[];
  /** More errors than listed. */
  errorsTruncated: boolean;
}

/** One change of the incremental feed. */
export interface LedgerChange {
  seq: number;
  time: string;
  action: string;
  deviceCode: string;
  actor: LedgerActor | null;
  /** The device after the change. */
  device: DeviceSnapshot | null;
  /** Action-specific fields (from/to of a transition, note). */
  detail: Record<string, unknown>;
}

/** Result of verifying the chain and the device table against it. */
export interface VerifyReport {
  ok: boolean;
  entries: number;
  devices: number;
  head: { seq: number; hash: string };
  /** The broken link with the lowest seq, or null. */
  firstBroken: BrokenLink | null;
  problems: BrokenLink[];
  ms: number;
}

/** How a proposer answers a duplicate flag. */
export type Resolution = { reuse: string } | { justify: string };

/** Options of the ledger. */
export interface LedgerServiceOptions {
  db: Database;
  /** The centre signing key in force (the algorithm centre's). */
  signingKey: () => SigningKey;
  /** 8-digit centre code for allocated codes. */
  centreCode: string;
  /** Duplicate radius per kind in metres; `*` for kinds not listed; 0 turns the check off. */
  duplicateRadiusM: Readonly<Record<string, number>>;
  /** Most rows one import request may carry. */
  importMaxRows?: number;
  /**
   * Whether a device belongs to an approved joint-review project (001 Art. 45: only an
   * approved project's devices may go live). When set, `→ approved` and `installed → active`
   * are refused (CS_ERR_LEDGER_NOT_REVIEWED) for devices it denies; unset, nothing is gated.
   */
  reviewed?: (code: string) => Promise<boolean>;
  logger?: Logger;
}

/** Decides whether a caller may file one row of a bulk registration: a refusal message, or undefined. */
export type RowAdmission = (input: DeviceInput) => { column: string; message: string } | undefined;

const MAX_LISTED_ERRORS = 10_000;
/** Rows filed per statement by an import. */
const IMPORT_BATCH = 500;

/** A registration checked and given its code prefix. */
interface Prepared {
  input: DeviceInput;
  prefix: string;
  /** Serial of a code the caller gave. */
  given: number | undefined;
}

/** A row of an import, parsed or with its problems. */
interface PendingRow {
  row: number;
  input: DeviceInput | FieldProblem[];
}

const emptyReport = (): ImportReport => ({
  rows: 0,
  applied: 0,
  failed: 0,
  flagged: 0,
  errors: [],
  errorsTruncated: false,
});
const VERIFY_PAGE = 5000;

/** The sensor ledger. */
export class LedgerService {
  readonly store: LedgerStore;
  readonly #o: LedgerServiceOptions;
  readonly #log: Logger;
  readonly #listeners = new Set<(seq: number) => void>();
  #fingerprint: { publicKey: string; value: string } | undefined;
  /** Chain head as this process last wrote or read it. */
  #head: { seq: number; hash: string } | undefined;
  /** Last serial per code prefix, valid while `#head` is. */
  readonly #serials = new Map<string, number>();
  /** Tail of the queue of writes: one at a time per process. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: LedgerServiceOptions) {
    this.#o = options;
    this.store = new LedgerStore(options.db);
    this.#log = componentLogger('ledger', options.logger);
  }

  /** Calls `listener` with the seq of every entry filed (after commit). */
  onFiled(listener: (seq: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Duplicate radius for a kind, metres. */
  radiusFor(kind: string): number {
    return this.#o.duplicateRadiusM[kind] ?? this.#o.duplicateRadiusM['*'] ?? 0;
  }

  /** Registers one device: allocates or checks its code, flags duplicates, files it. */
  async register(input: DeviceInput, actor: LedgerActor): Promise<Registered> {
    const prepared = this.#prepare(input);
    const [duplicates = []] = await this.#duplicatesFor([prepared]);
    const [registered] = await this.#insert([prepared], [duplicates], actor);
    if (!registered) throw new Error('ledger insert returned nothing');
    return registered;
  }

  /** Checks what the schema cannot and decides the code prefix; throws CS_ERR_LEDGER_FIELD / _CODE. */
  #prepare(input: DeviceInput): Prepared {
    const kind = input.kind;
    if (input.gb35114Level !== undefined && !isVideoKind(kind))
      throw fieldError('gb35114Level', `GB 35114 levels apply to video devices, not to a ${kind}`);
    if (input.gbType !== undefined && kind !== 'camera')
      throw fieldError(
        'gbType',
        `gbType chooses between camera type codes; a ${kind} is always ${KIND_TYPE_CODES[kind]}`,
      );
    if (input.code !== undefined) {
      checkGivenCode(input.code, kind);
      return { input, prefix: input.code.slice(0, 14), given: Number(input.code.slice(14)) };
    }
    try {
      const prefix = codePrefix({
        centre: input.centre ?? this.#o.centreCode,
        industry: input.industry ?? '00',
        type: kind === 'camera' ? (input.gbType ?? '132') : KIND_TYPE_CODES[kind],
        network: input.networkCode ?? '0',
      });
      return { input, prefix, given: undefined };
    } catch (err) {
      throw fieldError(input.centre ? 'centre' : 'industry', errorMessage(err));
    }
  }

  /** Standing devices near each proposed input (advisory: looked up before the write). */
  async #duplicatesFor(prepared: Prepared[]): Promise<NearbyDevice[][]> {
    const points = prepared.flatMap(({ input }, index) => {
      const radiusM = this.radiusFor(input.kind);
      return (input.state ?? 'proposed') === 'proposed' && radiusM > 0
        ? [{ index, kind: input.kind, longitude: input.longitude, latitude: input.latitude, radiusM }]
        : [];
    });
    const found = points.length > 0 ? await this.store.nearbyMany(points) : [];
    const result = prepared.map((): NearbyDevice[] => []);
    for (const { index, device } of found) result[index]?.push(device);
    return result;
  }

  /** Files prepared devices in one statement; a unique violation names the code when there is one device. */
  #insert(prepared: Prepared[], duplicates: NearbyDevice[][], actor: LedgerActor): Promise<Registered[]> {
    return this.#write(async (head, key, now) => {
      const serials = new Map<string, number>();
      const devices: DeviceSnapshot[] = [];
      const entries: LedgerEntry[] = [];
      const results: Registered[] = [];
      let prev = head;
      for (const [i, { input, prefix, given }] of prepared.entries()) {
        const last = serials.get(prefix) ?? (await this.#lastSerial(prefix));
        const serial = given ?? last + 1;
        serials.set(prefix, Math.max(last, serial));
        const state = input.state ?? 'proposed';
        const nearby = duplicates[i] ?? [];
        const device: DeviceSnapshot = {
          code: codeOf(prefix, serial),
          kind: input.kind,
          model: input.model ?? null,
          vendor: input.vendor ?? null,
          ownerAgency: input.ownerAgency,
          poleId: input.poleId ?? null,
          longitude: input.longitude,
          latitude: input.latitude,
          installedOn: input.installedOn ?? null,
          gb35114Level: input.gb35114Level ?? null,
          network: input.network ?? null,
          dataItems: input.dataItems ?? [],
          state,
          stateTimes: { [state]: now.toISOString() },
          duplicates: nearby.map((d) => d.code),
          resolution: null,
          reuseOf: null,
          justification: null,
        };
        const entry = this.#entry(prev, now, 'device.registered', device, actor, {}, key);
        prev = entry;
        devices.push(device);
        entries.push(entry);
        results.push({ device: { ...device, changeSeq: entry.seq }, duplicates: nearby });
      }
      let filed: boolean;
      try {
        filed = await this.store.insertFiled(devices, entries, head, serials);
      } catch (err) {
        const only = devices.length === 1 ? devices[0] : undefined;
        if (only && isUniqueViolation(err))
          throw new CitysenseError(
            'CS_ERR_LEDGER_DEVICE_EXISTS',
            `device ${only.code} is already in the ledger: change it through its own routes`,
            409,
            { column: 'code', code: only.code },
          );
        throw err;
      }
      if (!filed) return undefined;
      for (const [prefix, serial] of serials) this.#serials.set(prefix, serial);
      return { last: prev, result: results };
    });
  }

  /** Moves a device along its lifecycle; refused moves throw CS_ERR_LEDGER_TRANSITION (409). */
  async transition(
    code: string,
    to: DeviceState,
    actor: LedgerActor,
    options: { from?: DeviceState | undefined; note?: string | undefined } = {},
  ): Promise<LedgerDevice> {
    // Looked up before the write: an approved project stays approved, so the answer cannot go stale.
    const reviewed =
      this.#o.reviewed === undefined ||
      (to !== 'approved' && to !== 'active') ||
      (await this.#o.reviewed(code));
    return this.#update(code, actor, (current, now) => {
      if (options.from !== undefined && current.state !== options.from)
        throw transitionError(code, current.state, to, `the device is ${current.state}, not ${options.from}`);
      if (!TRANSITIONS[current.state].includes(to))
        throw transitionError(
          code,
          current.state,
          to,
          TRANSITIONS[current.state].length === 0
            ? `a ${current.state} device does not change any more`
            : `from ${current.state} it can go to ${TRANSITIONS[current.state].join(' or ')}`,
        );
      // Existing inventory (filed `active`, never proposed) went live before the review existed.
      const gated = to === 'approved' || (to === 'active' && current.state === 'installed');
      if (!reviewed && gated && current.stateTimes.proposed !== undefined)
        throw new CitysenseError(
          'CS_ERR_LEDGER_NOT_REVIEWED',
          `device ${code} belongs to no approved joint-review project, so it cannot become ${to}: ` +
            'list it in a project (POST /v1/review/projects) and have the project approved first',
          409,
          { code, from: current.state, to },
        );
      if (to === 'in-review' && current.duplicates.length > 0 && current.resolution === null)
        throw new CitysenseError(
          'CS_ERR_LEDGER_DUPLICATE',
          `device ${code} is within the duplicate radius of ${current.duplicates.join(', ')}: ` +
            `POST /v1/ledger/devices/${code}/resolution with {"reuse": "<code>"} or {"justify": "<why>"} first`,
          409,
          { duplicates: current.duplicates },
        );
      const next: DeviceSnapshot = {
        ...snapshotOf(current),
        state: to,
        stateTimes: { ...current.stateTimes, [to]: now.toISOString() },
      };
      const detail = { from: current.state, to, ...(options.note ? { note: options.note } : {}) };
      return { action: 'device.transition', next, detail };
    });
  }

  /** Answers a duplicate flag: link to the device to reuse, or justify building anyway. */
  async resolve(code: string, resolution: Resolution, actor: LedgerActor): Promise<LedgerDevice> {
    const reused = 'reuse' in resolution ? await this.store.device(resolution.reuse) : undefined;
    return this.#update(code, actor, (current) => {
      if (current.state !== 'proposed')
        throw new CitysenseError(
          'CS_ERR_LEDGER_RESOLUTION',
          `device ${code} is ${current.state}: only a proposed device answers a duplicate flag`,
          409,
        );
      const next = snapshotOf(current);
      if ('reuse' in resolution) {
        if (!reused || reused.kind !== current.kind || reused.state === 'retired' || reused.code === code)
          throw new CitysenseError(
            'CS_ERR_LEDGER_RESOLUTION',
            `cannot reuse ${resolution.reuse}: it must be another ${current.kind} in the ledger that is not retired`,
            400,
          );
        Object.assign(next, { resolution: 'reuse', reuseOf: reused.code, justification: null });
      } else {
        Object.assign(next, { resolution: 'justify', reuseOf: null, justification: resolution.justify });
      }
      return { action: 'device.resolved', next, detail: {} };
    });
  }

  /** Reads a device, lets `change` decide its next snapshot, files it if nothing moved meanwhile. */
  #update(
    code: string,
    actor: LedgerActor,
    change: (
      current: LedgerDevice,
      now: Date,
    ) => { action: string; next: DeviceSnapshot; detail: Record<string, unknown> },
  ): Promise<LedgerDevice> {
    return this.#write(async (head, key, now) => {
      const current = await this.store.device(code);
      if (!current) throw unknownDevice(code);
      const { action, next, detail } = change(current, now);
      const entry = this.#entry(head, now, action, next, actor, detail, key);
      const { headMoved, written } = await this.store.updateFiled(next, current.state, entry, head);
      if (headMoved) return undefined;
      if (!written)
        throw transitionError(code, current.state, next.state, 'the device row changed outside the ledger');
      return { last: entry, result: { ...next, changeSeq: entry.seq } };
    });
  }

  /**
   * Runs one ledger write at a time in this process, against the cached chain head. When
   * another hub on the same server moved the head, `attempt` returns undefined (nothing
   * was written): caches are dropped and the write is tried again on fresh state.
   */
  #write<T>(
    attempt: (
      head: { seq: number; hash: string },
      key: SigningKey,
      now: Date,
    ) => Promise<{ last: { seq: number; hash: string }; result: T } | undefined>,
  ): Promise<T> {
    const run = async (): Promise<T> => {
      const key = this.#o.signingKey();
      for (let i = 0; i < 20; i++) {
        this.#head ??= await this.store.head();
        const done = await attempt(this.#head, key, new Date());
        if (done) {
          this.#head = { seq: done.last.seq, hash: done.last.hash };
          this.#filed(done.last.seq);
          return done.result;
        }
        this.#head = undefined;
        this.#serials.clear();
      }
      throw new CitysenseError(
        'CS_ERR_LEDGER_BUSY',
        'the ledger kept changing under this write (other hubs writing): try again',
        503,
      );
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #lastSerial(prefix: string): Promise<number> {
    let last = this.#serials.get(prefix);
    if (last === undefined) {
      last = await this.store.lastSerial(prefix);
      this.#serials.set(prefix, last);
    }
    return last;
  }

  /** One device; throws CS_ERR_LEDGER_DEVICE_UNKNOWN. */
  async device(code: string): Promise<LedgerDevice> {
    const device = await this.store.device(code);
    if (!device) throw unknownDevice(code);
    return device;
  }

  /** Devices by filter. */
  list(filter: DeviceFilter): Promise<LedgerDevice[]> {
    return this.store.list(filter);
  }

  /** Standing devices of the same kind within the radius of a device, now. */
  async duplicatesOf(
    code: string,
  ): Promise<{ device: LedgerDevice; radiusM: number; duplicates: NearbyDevice[] }> {
    const device = await this.device(code);
    const radiusM = this.radiusFor(device.kind);
    const duplicates =
      radiusM > 0
        ? await this.store.nearby({
            kind: device.kind,
            longitude: device.longitude,
            latitude: device.latitude,
            radiusM,
            exclude: code,
          })
        : [];
    return { device, radiusM, duplicates };
  }

  /** Changes after `since`, oldest first. */
  async changes(since: number, limit: number): Promise<{ changes: LedgerChange[]; next: number }> {
    const entries = await this.store.entries(since, limit);
    return { changes: entries.map(changeOf), next: entries.at(-1)?.seq ?? since };
  }

  /** Every filed change of one device, oldest first: registration, moves, resolutions. */
  async history(code: string, limit = 1000): Promise<LedgerChange[]> {
    return (await this.store.entriesOf(code, limit)).map(changeOf);
  }

  /** The chain export (README.md): entries after `since` with the key that checks them. */
  async chain(since: number, limit: number): Promise<ChainExport> {
    const [entries, head] = await Promise.all([this.store.entries(since, limit), this.store.head()]);
    return { ...this.chainKey(), head, entries, next: entries.at(-1)?.seq ?? since };
  }

  /** Format, algorithm and public key of the chain. */
  chainKey(): {
    format: string;
    algorithm: SigningKey['algorithm'];
    publicKey: string;
    keyFingerprint: string;
  } {
    const key = this.#o.signingKey();
    return {
      format: CHAIN_FORMAT,
      algorithm: key.algorithm,
      publicKey: key.publicKey,
      keyFingerprint: this.#fp(key),
    };
  }

  /**
   * Walks the whole chain, then the device table against the last filed content of each
   * device. Reports every problem found (up to 100) and the one with the lowest seq.
   */
  async verify(): Promise<VerifyReport> {
    const started = performance.now();
    const key = this.#o.signingKey();
    const verifier = new ChainVerifier({ algorithm: key.algorithm, publicKey: key.publicKey });
    for (let since = 0; ; ) {
      const page = await this.store.entries(since, VERIFY_PAGE);
      for (const e of page) verifier.push(e);
      const last = page.at(-1);
      if (!last || page.length < VERIFY_PAGE) break;
      since = last.seq;
    }
    const head = await this.store.head();
    const last = verifier.last;
    if (head.seq > last.seq)
      verifier.report({
        seq: last.seq + 1,
        reason: 'seq-gap',
        message: `the chain head is at ${head.seq} but entries after ${last.seq} are missing`,
      });
    else if (head.seq !== last.seq || head.hash !== last.hash)
      verifier.report({
        seq: head.seq,
        reason: 'link-broken',
        message: `the chain head (${head.seq}) does not name the last entry (${last.seq})`,
      });
    const filed = verifier.filedDevices;
    let devices = 0;
    for (let after = ''; ; ) {
      const page = await this.store.devicePage(after, VERIFY_PAGE);
      for (const d of page) {
        devices++;
        const f = filed.get(d.code);
        filed.delete(d.code);
        if (!f)
          verifier.report({
            seq: d.changeSeq,
            reason: 'device-unfiled',
            deviceCode: d.code,
            message: `device ${d.code} is in the table but no entry filed it`,
          });
        else if (f.snapshotHash !== sha256Hex(canonicalJson(snapshotOf(d))))
          verifier.report({
            seq: f.seq,
            reason: 'device-changed',
            deviceCode: d.code,
            message: `device ${d.code} in the table differs from what entry ${f.seq} filed`,
          });
      }
      const lastDevice = page.at(-1);
      if (!lastDevice || page.length < VERIFY_PAGE) break;
      after = lastDevice.code;
    }
    for (const [code, f] of filed)
      if (f.snapshotHash !== null)
        verifier.report({
          seq: f.seq,
          reason: 'device-deleted',
          deviceCode: code,
          message: `device ${code} filed by entry ${f.seq} is missing from the table`,
        });
    const problems = [...verifier.problems].sort((a, b) => a.seq - b.seq);
    const report: VerifyReport = {
      ok: problems.length === 0,
      entries: verifier.entries,
      devices,
      head,
      firstBroken: problems[0] ?? null,
      problems,
      ms: Math.round(performance.now() - started),
    };
    if (!report.ok) this.#log.warn({ firstBroken: report.firstBroken }, 'ledger chain verification failed');
    return report;
  }

  /**
   * Registers rows of a CSV (header first). Rows are checked one by one and filed in
   * batches of up to 500, each batch one statement; when the database refuses a batch it
   * is filed again row by row, so a row is applied whole or not at all and one bad row
   * never takes good ones with it. `rowOffset` is added to line numbers (a client that
   * sends a big file in parts passes the number of lines before the part minus one).
   */
  async importCsv(
    records: AsyncIterable<CsvRecord>,
    actor: LedgerActor,
    rowOffset = 0,
    admit?: RowAdmission,
  ): Promise<ImportReport> {
    const report = emptyReport();
    const maxRows = this.#o.importMaxRows ?? 200_000;
    let header: string[] | undefined;
    let batch: PendingRow[] = [];
    for await (const record of records) {
      if (!header) {
        header = record.fields.map((f) => f.trim());
        checkHeader(header);
        continue;
      }
      const row = rowOffset + record.line;
      if (report.rows >= maxRows) {
        this.#reject(report, {
          row,
          column: '',
          code: 'CS_ERR_LEDGER_IMPORT_LIMIT',
          message: `an import carries at most ${maxRows} rows: send the rest in another request`,
        });
        break;
      }
      report.rows++;
      if (record.fields.length !== header.length) {
        this.#reject(report, {
          row,
          column: '',
          code: 'CS_ERR_LEDGER_CSV_ROW',
          message: `row has ${record.fields.length} fields, the header has ${header.length}`,
        });
        continue;
      }
      const cells: Record<string, string> = {};
      header.forEach((column, i) => {
        cells[column] = record.fields[i] ?? '';
      });
      batch.push({ row, input: deviceInputFromCsv(cells) });
      if (batch.length >= IMPORT_BATCH) {
        await this.#applyBatch(report, batch, actor, admit);
        batch = [];
      }
    }
    if (!header)
      throw new CitysenseError('CS_ERR_LEDGER_CSV_HEADER', 'the CSV is empty: it needs a header row', 400);
    await this.#applyBatch(report, batch, actor, admit);
    report.errors.sort((a, b) => a.row - b.row);
    this.#log.info(
      { rows: report.rows, applied: report.applied, failed: report.failed, flagged: report.flagged },
      'ledger import',
    );
    return report;
  }

  /** Registers validated inputs (JSON bulk); same report as a CSV import, rows numbered from 1. */
  async registerMany(
    inputs: Array<DeviceInput | FieldProblem[]>,
    actor: LedgerActor,
    admit?: RowAdmission,
  ): Promise<ImportReport> {
    const report = emptyReport();
    report.rows = inputs.length;
    for (let i = 0; i < inputs.length; i += IMPORT_BATCH)
      await this.#applyBatch(
        report,
        inputs.slice(i, i + IMPORT_BATCH).map((input, k) => ({ row: i + k + 1, input })),
        actor,
        admit,
      );
    report.errors.sort((a, b) => a.row - b.row);
    return report;
  }

  async #applyBatch(
    report: ImportReport,
    batch: PendingRow[],
    actor: LedgerActor,
    admit: RowAdmission | undefined,
  ): Promise<void> {
    const ready: Array<{ row: number; prepared: Prepared }> = [];
    for (const { row, input } of batch) {
      if (Array.isArray(input)) {
        report.failed++;
        for (const p of input)
          this.#listError(report, { row, column: p.column, code: 'CS_ERR_LEDGER_FIELD', message: p.message });
        continue;
      }
      const refused = admit?.(input);
      if (refused) {
        this.#reject(report, { row, ...refused, code: 'CS_ERR_AUTH_FORBIDDEN' });
        continue;
      }
      try {
        ready.push({ row, prepared: this.#prepare(input) });
      } catch (err) {
        this.#rejectError(report, row, err);
      }
    }
    if (ready.length === 0) return;
    const duplicates = await this.#duplicatesFor(ready.map((r) => r.prepared));
    try {
      const done = await this.#insert(
        ready.map((r) => r.prepared),
        duplicates,
        actor,
      );
      report.applied += done.length;
      report.flagged += done.filter((d) => d.duplicates.length > 0).length;
      return;
    } catch (err) {
      if (ready.length === 1) {
        this.#rejectError(report, ready[0]?.row ?? 0, err);
        return;
      }
    }
    // The database refused the batch (a code that exists, twice in the batch): row by row.
    for (const [i, { row, prepared }] of ready.entries()) {
      try {
        const [done] = await this.#insert([prepared], [duplicates[i] ?? []], actor);
        report.applied++;
        if (done && done.duplicates.length > 0) report.flagged++;
      } catch (err) {
        this.#rejectError(report, row, err);
      }
    }
  }

  #rejectError(report: ImportReport, row: number, err: unknown): void {
    if (!(err instanceof CitysenseError))
      this.#log.error({ row, err: errorMessage(err) }, 'ledger row failed');
    const details = (err as CitysenseError).details as { column?: string } | undefined;
    this.#reject(report, {
      row,
      column: details?.column ?? '',
      code: err instanceof CitysenseError ? err.code : 'CS_ERR_LEDGER_ROW_FAILED',
      message: errorMessage(err),
    });
  }

  #reject(report: ImportReport, error: ImportError): void {
    report.failed++;
    this.#listError(report, error);
  }

  #listError(report: ImportReport, error: ImportError): void {
    if (report.errors.length < MAX_LISTED_ERRORS) report.errors.push(error);
    else report.errorsTruncated = true;
  }

  #entry(
    head: { seq: number; hash: string },
    time: Date,
    action: string,
    device: DeviceSnapshot,
    actor: LedgerActor,
    detail: Record<string, unknown>,
    key: SigningKey,
  ): LedgerEntry {
    return makeEntry(
      head,
      { time, action, deviceCode: device.code, content: { ...detail, action, actor, device } },
      key,
      this.#fp(key),
    );
  }

  #fp(key: SigningKey): string {
    if (this.#fingerprint?.publicKey !== key.publicKey)
      this.#fingerprint = { publicKey: key.publicKey, value: keyFingerprint(key.publicKey) };
    return this.#fingerprint.value;
  }

  #filed(seq: number): void {
    for (const listener of this.#listeners) listener(seq);
  }
}

/** The chain export body (README.md). */
export interface ChainExport {
  format: string;
  algorithm: SigningKey['algorithm'];
  publicKey: string;
  keyFingerprint: string;
  head: { seq: number; hash: string };
  entries: LedgerEntry[];
  /** Pass as `since` for the next page. */
  next: number;
}

/** The filed part of a device row. */
export function snapshotOf(d: LedgerDevice): DeviceSnapshot {
  const { changeSeq: _seq, ...snapshot } = d;
  return snapshot;
}

/** Checks the CSV header: known columns, the required ones present, none twice. */
function checkHeader(header: string[]): void {
  const unknown = header.filter((h) => !(CSV_COLUMNS as string[]).includes(h));
  const missing = ['kind', 'ownerAgency', 'longitude', 'latitude'].filter((c) => !header.includes(c));
  const twice = header.filter((h, i) => header.indexOf(h) !== i);
  if (unknown.length + missing.length + twice.length === 0) return;
  const what = [
    unknown.length ? `unknown columns ${unknown.join(', ')}` : '',
    missing.length ? `missing columns ${missing.join(', ')}` : '',
    twice.length ? `repeated columns ${twice.join(', ')}` : '',
  ].filter(Boolean);
  throw new CitysenseError(
    'CS_ERR_LEDGER_CSV_HEADER',
    `${what.join('; ')}. Columns: ${CSV_COLUMNS.join(', ')}`,
    400,
    { unknown, missing, repeated: twice },
  );
}

/** Unique violation (SQLSTATE 23505) from either engine. */
function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '23505' || /duplicate key/.test(errorMessage(err));
}

function fieldError(column: string, message: string): CitysenseError {
  return new CitysenseError('CS_ERR_LEDGER_FIELD', message, 400, { column });
}

function unknownDevice(code: string): CitysenseError {
  return new CitysenseError('CS_ERR_LEDGER_DEVICE_UNKNOWN', `device ${code} is not in the ledger`, 404);
}

function transitionError(code: string, from: DeviceState, to: DeviceState, why: string): CitysenseError {
  return new CitysenseError(
    'CS_ERR_LEDGER_TRANSITION',
    `device ${code} cannot go from ${from} to ${to}: ${why}`,
    409,
    { code, from, to },
  );
}

/** A chain entry read as a change (content parsed). */
function changeOf(e: LedgerEntry): LedgerChange {
  const {
    action: _a,
    actor,
    device,
    ...detail
  } = JSON.parse(e.content) as {
    action: string;
    actor?: LedgerActor;
    device?: DeviceSnapshot;
  } & Record<string, unknown>;
  return {
    seq: e.seq,
    time: e.time,
    action: e.action,
    deviceCode: e.deviceCode,
    actor: actor ?? null,
    device: device ?? null,
    detail,
  };
}
