/**
 * Hardware facts an edge node reports at enrolment; the hub keeps them in its
 * compute catalogue (001 Art. 49(二)) and schedules algorithms against them.
 */
export interface NodeHardware {
  arch: string;
  platform: string;
  cpuModel: string;
  cpuCores: number;
  memoryBytes: number;
  diskBytes: number;
  /** Inference backends this box can run (ONNX Runtime execution providers). */
  executionProviders: string[];
  /** Gateway hardware model (e.g. `LPG-3`), matched against an OTA manifest's `hardware`; optional. */
  model?: string;
}
