import { readdir, readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import {
  componentLogger,
  DataType,
  errorMessage,
  HEALTH_METRICS,
  type Logger,
  type SparkplugMetric,
} from '@citysense/protocol';
import type { SpoolStats } from './spool/spool.ts';

/** One sample of node health, reported as an NDATA record. */
export interface HealthSnapshot {
  /** Milliseconds since the epoch when the sample was taken. */
  time: number;
  /** CPU busy % across all cores since the previous sample (since boot on the first). */
  cpuPercent: number;
  memoryPercent: number;
  /** Used % of the filesystem holding the state dir (where the spool grows). */
  diskPercent: number;
  /** Hottest thermal zone, °C; absent where /sys/class/thermal is not readable. */
  temperatureC?: number | undefined;
  /** Operating-system uptime (os.uptime), s: a box reboot is what the field engineer needs to see. */
  uptimeS: number;
  spoolBytes: number;
  spoolRecords: number;
  /** Age of the oldest record still in the spool, s; 0 when empty. */
  spoolAgeS: number;
  droppedRecords: number;
  /** Moving median publish→ack time, ms; absent before the first ack. */
  linkRttMs?: number | undefined;
}

/** Where health figures that are not about the machine come from. */
export interface HealthSources {
  stateDir: string;
  spoolStats: () => SpoolStats;
  rttMs: () => number | null;
  /** Overrides /sys/class/thermal (tests). */
  thermalDir?: string | undefined;
  logger?: Logger | undefined;
}

interface CpuTotals {
  idle: number;
  total: number;
}

function cpuTotals(): CpuTotals {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** Samples node health: CPU, memory, disk, temperature, uptime, spool and link figures. */
export class HealthMonitor {
  readonly #o: HealthSources;
  readonly #log: Logger;
  #lastCpu: CpuTotals | null = null;
  #thermalWarned = false;

  constructor(o: HealthSources) {
    this.#o = o;
    this.#log = o.logger ?? componentLogger('health');
  }

  /** Takes one sample. */
  async sample(now = Date.now()): Promise<HealthSnapshot> {
    const spool = this.#o.spoolStats();
    const rtt = this.#o.rttMs();
    return {
      time: now,
      cpuPercent: this.#cpuPercent(),
      memoryPercent: round1((1 - os.freemem() / os.totalmem()) * 100),
      diskPercent: await this.#diskPercent(),
      temperatureC: await this.#temperatureC(),
      uptimeS: Math.round(os.uptime()),
      spoolBytes: spool.bytes,
      spoolRecords: spool.records,
      spoolAgeS: spool.oldestAppendedAt === null ? 0 : Math.max(0, (now - spool.oldestAppendedAt) / 1000),
      droppedRecords: spool.droppedRecords,
      linkRttMs: rtt ?? undefined,
    };
  }

  #cpuPercent(): number {
    const now = cpuTotals();
    const prev = this.#lastCpu ?? { idle: 0, total: 0 };
    this.#lastCpu = now;
    const total = now.total - prev.total;
    return total <= 0 ? 0 : round1((1 - (now.idle - prev.idle) / total) * 100);
  }

  async #diskPercent(): Promise<number> {
    const fs = await statfs(this.#o.stateDir);
    // `bavail` is what unprivileged writers (the spool) can still use, like `df`.
    const usable = fs.blocks - fs.bfree + fs.bavail;
    return usable <= 0 ? 0 : round1(((fs.blocks - fs.bfree) / usable) * 100);
  }

  async #temperatureC(): Promise<number | undefined> {
    const dir = this.#o.thermalDir ?? '/sys/class/thermal';
    let zones: string[];
    try {
      zones = (await readdir(dir)).filter((z) => z.startsWith('thermal_zone'));
    } catch {
      return undefined; // no thermal class: containers, most VMs
    }
    let hottest: number | undefined;
    for (const zone of zones) {
      try {
        const milli = Number((await readFile(join(dir, zone, 'temp'), 'utf8')).trim());
        if (Number.isFinite(milli)) hottest = Math.max(hottest ?? -Infinity, milli / 1000);
      } catch (err) {
        if (!this.#thermalWarned)
          this.#log.debug({ zone, err: errorMessage(err) }, 'thermal zone unreadable');
        this.#thermalWarned = true;
      }
    }
    return hottest === undefined ? undefined : round1(hottest);
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** The NDATA metrics of a health sample (Double, by HEALTH_METRICS name); absent figures are left out. */
export function healthMetrics(s: HealthSnapshot): SparkplugMetric[] {
  const values: Array<[string, number | undefined]> = [
    [HEALTH_METRICS.cpuPercent, s.cpuPercent],
    [HEALTH_METRICS.memoryPercent, s.memoryPercent],
    [HEALTH_METRICS.diskPercent, s.diskPercent],
    [HEALTH_METRICS.temperatureC, s.temperatureC],
    [HEALTH_METRICS.uptimeS, s.uptimeS],
    [HEALTH_METRICS.spoolBytes, s.spoolBytes],
    [HEALTH_METRICS.spoolRecords, s.spoolRecords],
    [HEALTH_METRICS.spoolAgeS, s.spoolAgeS],
    [HEALTH_METRICS.droppedRecords, s.droppedRecords],
    [HEALTH_METRICS.linkRttMs, s.linkRttMs],
  ];
  return values
    .filter((e): e is [string, number] => e[1] !== undefined)
    .map(([name, value]) => ({ name, datatype: DataType.Double, timestamp: s.time, value }));
}
