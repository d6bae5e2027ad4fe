/**
 * What the fleet pages read from the hub: nodes (`/v1/nodes`), health buckets from the
 * continuous aggregate (`/v1/nodes/:id/health?bucket=`), what a node runs
 * (`/v1/nodes/:id/inference`) and remote operations (`POST /v1/nodes/:id/operations`,
 * then polling `GET …/operations/:opId` until the operation ends).
 */
import { type ApiClient, ApiError } from '../../api.ts';
import type { Point } from './charts.tsx';

/** A node as `GET /v1/nodes` lists it. */
export interface FleetNode {
  id: string;
  name: string | null;
  agentVersion: string | null;
  hardware: Record<string, unknown>;
  location: { lon: number; lat: number } | null;
  poleId: string | null;
  enrolledAt: string;
  status: 'online' | 'offline' | 'deregistered';
  lastSeen: string | null;
  health: Record<string, number | null> | null;
  devices: Array<{ id: string; online: boolean }>;
  agencyId?: string | null;
}

/** One health bucket (averages; maxima for spool and counters). */
export interface HealthBucket {
  bucket: string;
  samples: number;
  cpuPercent: number | null;
  memoryPercent: number | null;
  diskPercent: number | null;
  spoolRecords: number | null;
  linkRttMs: number | null;
}

/** What a node runs (`GET /v1/nodes/:id/inference`). */
export interface NodeInference {
  nodeId: string;
  online: boolean;
  algorithms: Array<{
    algorithmId: string;
    version: string;
    activeVersion: string | null;
    state: string;
    stats: { fps?: number } | null;
  }>;
}

/** A remote operation as the hub shows it. */
export interface OperationView {
  id: string;
  nodeId: string;
  kind: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'rolled-back' | 'expired';
  code: string | null;
  message: string | null;
  result: unknown;
  createdAt: string;
  finishedAt: string | null;
}

/** One line of a doctor report. */
export interface DoctorCheck {
  name: string;
  verdict: 'ok' | 'warn' | 'fail';
  detail: string;
}

/** The node's self-diagnosis. */
export interface DoctorReport {
  at: string;
  nodeId: string | null;
  checks: DoctorCheck[];
  healthy: boolean;
}

/** One line of the agent's log. */
export interface LogLine {
  seq: number;
  time: number;
  level: string;
  component: string | null;
  msg: string;
}

/** Result of `log-tail`. */
export interface LogTail {
  lines: LogLine[];
  next: number;
  gap: boolean;
}

const TERMINAL = new Set(['succeeded', 'failed', 'rolled-back', 'expired']);

/** Path of a node's resource. */
export const nodePath = (id: string, rest = '') => `/v1/nodes/${encodeURIComponent(id)}${rest}`;

/** Health buckets of the last `hours`, one series per metric. */
export async function loadHealth(
  api: ApiClient,
  nodeId: string,
  hours: number,
  signal?: AbortSignal,
): Promise<HealthBucket[]> {
  const bucket = hours <= 1 ? '1m' : hours <= 6 ? '5m' : '15m';
  const from = new Date(Date.now() - hours * 3600_000).toISOString();
  const path = `${nodePath(nodeId, '/health')}?bucket=${bucket}&from=${encodeURIComponent(from)}`;
  return api.request<HealthBucket[]>('GET', path, signal ? { signal } : {});
}

/** Bucket width the health query uses for a range. */
export const bucketFor = (hours: number) => (hours <= 1 ? '1m' : hours <= 6 ? '5m' : '15m');

/** One metric of the buckets as chart points (oldest first). */
export function series(rows: HealthBucket[], key: keyof Omit<HealthBucket, 'bucket'>): Point[] {
  return rows.map((r): Point => [Date.parse(r.bucket), r[key] ?? null]).sort((a, b) => a[0] - b[0]);
}

/**
 * Runs a remote operation: creates it, then polls until it ends (the node picks it up
 * after an NCMD nudge; an unanswered one expires at its deadline on the hub).
 */
export async function runOperation(
  api: ApiClient,
  nodeId: string,
  kind: string,
  params: unknown,
  onUpdate: (op: OperationView) => void,
  signal: AbortSignal,
): Promise<OperationView> {
  let op = await api.request<OperationView>('POST', nodePath(nodeId, '/operations'), {
    body: { kind, params, timeoutMs: 30_000 },
    signal,
  });
  onUpdate(op);
  let delay = 250;
  while (!TERMINAL.has(op.state)) {
    await new Promise((r) => setTimeout(r, delay));
    if (signal.aborted) throw new DOMException('aborted', 'AbortError');
    delay = Math.min(delay * 1.5, 1500);
    op = await api.request<OperationView>(
      'GET',
      nodePath(nodeId, `/operations/${encodeURIComponent(op.id)}`),
      { signal },
    );
    onUpdate(op);
  }
  return op;
}

/** The operation's failure as an ApiError (code from the node, e.g. CS_ERR_DRIVER_NOT_FOUND). */
export function operationError(op: OperationView): ApiError | null {
  if (op.state === 'succeeded') return null;
  return new ApiError(
    op.code ?? (op.state === 'expired' ? 'CS_ERR_OPERATION_EXPIRED' : 'CS_ERR_OPERATION_FAILED'),
    op.message ?? op.state,
    0,
    nodePath(op.nodeId, `/operations/${op.id}`),
  );
}
