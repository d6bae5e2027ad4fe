import type { MetricType, Reading } from '@citysense/device-drivers';
import {
  CitysenseError,
  errorMessage,
  isValidId,
  type Logger,
  type SparkplugMetric,
} from '@citysense/protocol';
import { type HealthSnapshot, healthMetrics } from './health.ts';
import { coerceValue, datatypeOf, encodeRecord, inferMetricType, qualityProperty } from './record.ts';

/** Where records go: the spool's append side. */
export interface RecordSink {
  appendMany(payloads: Uint8Array[]): Promise<number[]>;
}

/** Options of the recorder. */
export interface TelemetryRecorderOptions {
  sink: RecordSink;
  /** Declared type of a metric, from the drivers' device descriptors. */
  metricType: (device: string, metric: string) => MetricType | undefined;
  logger: Logger;
}

/**
 * Turns driver reading batches and health samples into spool records: one record
 * per device per batch, so one DDATA carries one device's readings. Appends run one
 * after another so records keep the order in which batches arrived.
 */
export class TelemetryRecorder {
  readonly #o: TelemetryRecorderOptions;
  #chain: Promise<void> = Promise.resolve();
  #appendFailures = 0;

  constructor(o: TelemetryRecorderOptions) {
    this.#o = o;
  }

  /**
   * Encodes a driver batch and queues it for the spool. Throws (synchronously)
   * CS_ERR_READING_INVALID on readings no record can hold, so the driver host can
   * treat it as that driver's fault; spool failures are logged and counted here.
   */
  recordReadings(batch: Reading[]): void {
    const byDevice = new Map<string, SparkplugMetric[]>();
    for (const r of batch) {
      if (typeof r.device !== 'string' || !isValidId(r.device)) {
        throw new CitysenseError(
          'CS_ERR_READING_INVALID',
          `reading has an invalid device id "${String(r.device)}"`,
          400,
        );
      }
      if (typeof r.metric !== 'string' || r.metric.length === 0 || !Number.isFinite(r.time)) {
        throw new CitysenseError(
          'CS_ERR_READING_INVALID',
          `reading of ${r.device} lacks a metric name or a time`,
          400,
        );
      }
      const type = this.#o.metricType(r.device, r.metric) ?? inferMetricType(r.value);
      const value = coerceValue(type, r.value);
      const quality = value === undefined ? 'bad' : r.quality;
      const q = qualityProperty(quality);
      const metrics = byDevice.get(r.device) ?? [];
      metrics.push({
        name: r.metric,
        datatype: datatypeOf(type),
        timestamp: r.time,
        value: value ?? null,
        properties: q === undefined ? undefined : { Quality: q },
      });
      byDevice.set(r.device, metrics);
    }
    const payloads = [...byDevice].map(([device, metrics]) => encodeRecord({ device, metrics }));
    if (payloads.length > 0) this.#append(payloads);
  }

  /** Encodes a health sample as a node-level record and queues it. */
  recordHealth(sample: HealthSnapshot): void {
    this.#append([encodeRecord({ device: null, metrics: healthMetrics(sample) })]);
  }

  /** Resolves when every queued append has finished. */
  flush(): Promise<void> {
    return this.#chain;
  }

  /** Appends that failed (spool full under reject-new, disk error). */
  get appendFailures(): number {
    return this.#appendFailures;
  }

  #append(payloads: Uint8Array[]): void {
    this.#chain = this.#chain
      .then(() => this.#o.sink.appendMany(payloads))
      .then(
        () => undefined,
        (err: unknown) => {
          this.#appendFailures++;
          this.#o.logger.warn({ err: errorMessage(err), records: payloads.length }, 'spool append failed');
        },
      );
  }
}
