import type { DeviceDescriptor } from '@citysense/device-drivers';
import {
  BD_SEQ,
  DataType,
  type DataTypeCode,
  HEALTH_METRICS,
  NODE_PROPERTIES,
  REBIRTH,
  SPOOL_ID,
  type SparkplugMetric,
  type SparkplugPayload,
} from '@citysense/protocol';
import { datatypeOf } from '../record.ts';

/** One metric as declared in a birth. */
export interface BornMetric {
  name: string;
  alias: number;
  datatype: DataTypeCode;
  unit?: string | undefined;
}

const NODE = '';

/**
 * The metrics this node declares in its births, with aliases unique across the
 * node and its devices (Sparkplug 3.0 §6.4.4 / tck-id-payloads-alias-uniqueness).
 * Aliases are kept for the life of the process so a rebirth repeats them.
 */
export class BirthCatalog {
  readonly #scopes = new Map<string, Map<string, BornMetric>>();
  #nextAlias = 1;

  constructor() {
    const node = this.#scope(NODE);
    const declare = (name: string, datatype: DataTypeCode) =>
      node.set(name, { name, alias: this.#nextAlias++, datatype });
    declare(BD_SEQ, DataType.UInt64);
    declare(REBIRTH, DataType.Boolean);
    declare(NODE_PROPERTIES.agentVersion, DataType.String);
    for (const name of Object.values(HEALTH_METRICS)) declare(name, DataType.Double);
    declare(SPOOL_ID, DataType.UInt64);
  }

  #scope(device: string): Map<string, BornMetric> {
    let scope = this.#scopes.get(device);
    if (!scope) {
      scope = new Map();
      this.#scopes.set(device, scope);
      // Every device carries its own spool-id metric in DDATA, so it gets its own alias.
      if (device !== NODE)
        scope.set(SPOOL_ID, { name: SPOOL_ID, alias: this.#nextAlias++, datatype: DataType.UInt64 });
    }
    return scope;
  }

  /**
   * Declares `name` on `device` (null = node). Returns true when this changes the
   * births: a new metric, or a new datatype for a known one.
   */
  declare(device: string | null, name: string, datatype: DataTypeCode, unit?: string): boolean {
    const scope = this.#scope(device ?? NODE);
    const known = scope.get(name);
    if (known && known.datatype === datatype) {
      if (unit !== undefined) known.unit = unit;
      return false;
    }
    scope.set(name, { name, alias: known?.alias ?? this.#nextAlias++, datatype, unit: unit ?? known?.unit });
    return true;
  }

  /** Declares every metric of a driver's device; true when the births changed. */
  declareDevice(d: DeviceDescriptor): boolean {
    const isNew = !this.#scopes.has(d.id);
    let changed = isNew;
    for (const m of d.metrics) changed = this.declare(d.id, m.name, datatypeOf(m.type), m.unit) || changed;
    return changed;
  }

  /** The born metric, or undefined when `name` is not in the current births. */
  lookup(device: string | null, name: string): BornMetric | undefined {
    return this.#scopes.get(device ?? NODE)?.get(name);
  }

  /** Name of a node-level metric by alias (hosts may address NCMD metrics by alias). */
  nameOfNodeAlias(alias: number | undefined): string | undefined {
    if (alias === undefined) return undefined;
    for (const m of this.#scopes.get(NODE)?.values() ?? []) if (m.alias === alias) return m.name;
    return undefined;
  }

  /** True when `device` has been declared. */
  hasDevice(device: string): boolean {
    return this.#scopes.has(device);
  }

  /** Device ids in declaration order. */
  devices(): string[] {
    return [...this.#scopes.keys()].filter((d) => d !== NODE);
  }

  /** NBIRTH payload, Sparkplug 3.0 §6.4.18: seq 0, bdSeq, Rebirth false, properties, every node metric. */
  nodeBirth(bdSeq: number, agentVersion: string, now: number): SparkplugPayload {
    const values: Record<string, SparkplugMetric['value']> = {
      [BD_SEQ]: bdSeq,
      [REBIRTH]: false,
      [NODE_PROPERTIES.agentVersion]: agentVersion,
    };
    return { timestamp: now, seq: 0, metrics: this.#birthMetrics(NODE, now, values) };
  }

  /** DBIRTH payload for one device; `seq` is the node's next sequence number. */
  deviceBirth(device: string, seq: number, now: number): SparkplugPayload {
    return { timestamp: now, seq, metrics: this.#birthMetrics(device, now, {}) };
  }

  /**
   * Birth metrics carry a value only where the node knows one at birth time; the
   * rest are declared null (is_null), because values travel in spool-backed data
   * messages that the hub acks, and a birth is not one of them.
   */
  #birthMetrics(
    device: string,
    now: number,
    values: Record<string, SparkplugMetric['value']>,
  ): SparkplugMetric[] {
    return [...(this.#scopes.get(device)?.values() ?? [])].map((m) => ({
      name: m.name,
      alias: m.alias,
      datatype: m.datatype,
      timestamp: now,
      value: values[m.name] ?? null,
      properties: m.unit === undefined ? undefined : { engUnit: m.unit },
    }));
  }
}
