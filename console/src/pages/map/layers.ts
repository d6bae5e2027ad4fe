/**
 * Loads the map's points from the public API, one layer per source, each failing on
 * its own (its error is shown with its code while the other layers still draw):
 * carrier poles `/v1/carriers`, gateways `/v1/nodes`, sensors and cameras of the
 * ledger `/v1/ledger/devices` (paged), and GB/T 28181 channels with a position from
 * `/v1/video/devices/:id/channels`.
 */
import { type ApiClient, type ApiError, asApiError, type Me, type Role } from '../../api.ts';
import type { MessageKey } from '../../i18n.ts';
import type { MapPoint, PointKind, Status } from './model.ts';

/** Layers of the map, by source. */
export type LayerId = 'carriers' | 'nodes' | 'ledger' | 'video';

/** What one layer loaded, or why not. */
export interface LayerResult {
  layer: LayerId;
  points: MapPoint[];
  error?: ApiError;
}

/** Roles whose holders may read each layer (the hub decides; this only avoids asking in vain). */
const LAYER_ROLES: Record<LayerId, readonly Role[] | null> = {
  carriers: null,
  nodes: ['platform-admin', 'field-engineer'],
  ledger: ['platform-admin', 'reviewer', 'field-engineer', 'agency-operator'],
  video: ['platform-admin', 'field-engineer'],
};

/** Layers `me` may read. */
export function layersFor(me: Me): LayerId[] {
  const held = new Set(me.kind === 'admin' ? ['platform-admin'] : me.user.roles.map((g) => g.role));
  return (Object.keys(LAYER_ROLES) as LayerId[]).filter((l) => {
    const roles = LAYER_ROLES[l];
    return !roles || held.has('platform-admin') || roles.some((r) => held.has(r));
  });
}

interface PoleFeature {
  id: string;
  geometry: { coordinates: [number, number] };
  properties: {
    kind: string;
    ownerAgency: string;
    road: string | null;
    address: string | null;
    powerStatus: string;
    networkStatus: string;
    networkKind: string;
    freeSlots: number;
    slots: number;
    freePowerW: number;
    gateways: number;
    updatedAt: string;
  };
}

interface NodeRow {
  id: string;
  name: string | null;
  status: 'online' | 'offline' | 'deregistered';
  location: { lon: number; lat: number } | null;
  poleId: string | null;
  agentVersion: string | null;
  lastSeen: string | null;
  devices: Array<{ id: string; online: boolean }>;
}

interface LedgerRow {
  code: string;
  kind: string;
  model: string | null;
  vendor: string | null;
  ownerAgency: string;
  poleId: string | null;
  longitude: number;
  latitude: number;
  state: string;
  stateTimes: Record<string, string>;
  gb35114Level: string | null;
}

interface VideoDevice {
  deviceId: string;
  name: string | null;
  online: boolean;
  lastKeepaliveAt: string | null;
}

interface VideoChannel {
  channelId: string;
  name: string | null;
  status: string | null;
  longitude: number | null;
  latitude: number | null;
  owner: string | null;
  address: string | null;
  updatedAt: string;
}

function poleStatus(p: PoleFeature['properties']): Status {
  if (p.powerStatus === 'fault' || p.networkStatus === 'down') return 'bad';
  if (p.powerStatus === 'unknown' && p.networkStatus === 'unknown') return 'unknown';
  return 'ok';
}

/** Ledger lifecycle → status class: live is ok, on its way or in maintenance is warn. */
export function ledgerStatus(state: string): Status {
  if (state === 'active') return 'ok';
  if (state === 'retired') return 'unknown';
  return 'warn';
}

function ledgerKind(kind: string): PointKind {
  return kind === 'camera' ? 'camera' : kind === 'gateway' ? 'gateway' : 'sensor';
}

async function loadCarriers(api: ApiClient): Promise<MapPoint[]> {
  const fc = await api.get<{ features: PoleFeature[] }>('/v1/carriers');
  return fc.features.map((f) => {
    const p = f.properties;
    return {
      key: `pole:${f.id}`,
      id: f.id,
      kind: 'pole',
      status: poleStatus(p),
      state: `${p.powerStatus} / ${p.networkKind} ${p.networkStatus}`,
      lon: f.geometry.coordinates[0],
      lat: f.geometry.coordinates[1],
      agency: p.ownerAgency,
      label: p.road ? `${f.id} · ${p.road}` : f.id,
      source: '/v1/carriers',
      updated: p.updatedAt,
      facts: [
        ['fact.poleKind', p.kind],
        ['fact.address', p.address ?? '—'],
        ['fact.freeSlots', `${p.freeSlots} / ${p.slots}`],
        ['fact.freePower', `${p.freePowerW} W`],
        ['fact.gateways', String(p.gateways)],
      ],
    };
  });
}

async function loadNodes(
  api: ApiClient,
  polesLoaded: Promise<Map<string, [number, number]>>,
): Promise<MapPoint[]> {
  const nodes = await api.get<NodeRow[]>('/v1/nodes');
  // A gateway without its own position stands where its pole is.
  const poles = await polesLoaded;
  const out: MapPoint[] = [];
  for (const n of nodes) {
    const at = n.location
      ? ([n.location.lon, n.location.lat] as [number, number])
      : poles.get(n.poleId ?? '');
    if (!at || n.status === 'deregistered') continue;
    out.push({
      key: `gateway:${n.id}`,
      id: n.id,
      kind: 'gateway',
      status: n.status === 'online' ? 'ok' : 'bad',
      state: n.status,
      lon: at[0],
      lat: at[1],
      agency: null,
      label: n.name ?? n.id,
      source: '/v1/nodes',
      updated: n.lastSeen,
      facts: [
        ['fact.pole', n.poleId ?? '—'],
        ['fact.agent', n.agentVersion ?? '—'],
        ['fact.devices', `${n.devices.filter((d) => d.online).length} / ${n.devices.length}`],
      ],
    });
  }
  return out;
}

async function loadLedger(api: ApiClient, signal: AbortSignal): Promise<MapPoint[]> {
  const out: MapPoint[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await api.get<LedgerRow[]>('/v1/ledger/devices', { limit: 10_000, after });
    for (const d of page)
      out.push({
        key: `ledger:${d.code}`,
        id: d.code,
        kind: ledgerKind(d.kind),
        status: ledgerStatus(d.state),
        state: d.state,
        lon: d.longitude,
        lat: d.latitude,
        agency: d.ownerAgency,
        label: d.model ? `${d.kind} · ${d.model}` : d.kind,
        source: '/v1/ledger/devices',
        updated: d.stateTimes[d.state] ?? null,
        facts: [
          ['fact.deviceKind', d.kind],
          ['fact.vendor', d.vendor ?? '—'],
          ['fact.pole', d.poleId ?? '—'],
          ...(d.gb35114Level ? ([['fact.gb35114', d.gb35114Level]] as Array<[MessageKey, string]>) : []),
        ],
      });
    if (page.length < 10_000 || signal.aborted) return out;
    after = page[page.length - 1]?.code;
  }
}

async function loadVideo(api: ApiClient): Promise<MapPoint[]> {
  const devices = await api.get<VideoDevice[]>('/v1/video/devices');
  const out: MapPoint[] = [];
  // Channels carry the positions (GB/T 28181-2022 Catalog Longitude/Latitude); a few devices at a time.
  const queue = devices.slice(0, 200);
  const worker = async () => {
    for (let d = queue.shift(); d; d = queue.shift()) {
      const device = d;
      const channels = await api.get<VideoChannel[]>(
        `/v1/video/devices/${encodeURIComponent(device.deviceId)}/channels`,
      );
      for (const c of channels) {
        if (c.longitude === null || c.latitude === null || (c.longitude === 0 && c.latitude === 0)) continue;
        const on = device.online && (c.status ?? 'ON').toUpperCase() === 'ON';
        out.push({
          key: `video:${c.channelId}`,
          id: c.channelId,
          kind: 'camera',
          status: on ? 'ok' : 'bad',
          state: on ? 'online' : 'offline',
          lon: c.longitude,
          lat: c.latitude,
          agency: c.owner,
          label: c.name ?? c.channelId,
          source: '/v1/video/devices',
          updated: c.updatedAt,
          facts: [
            ['fact.device', device.name ? `${device.name} (${device.deviceId})` : device.deviceId],
            ['fact.address', c.address ?? '—'],
          ],
        });
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

/** Loads every layer `me` may read; each layer's failure stays its own. */
export async function loadLayers(api: ApiClient, me: Me, signal: AbortSignal): Promise<LayerResult[]> {
  const wanted = new Set(layersFor(me));
  const settle = async (layer: LayerId, run: () => Promise<MapPoint[]>): Promise<LayerResult> => {
    try {
      return { layer, points: await run() };
    } catch (e) {
      return { layer, points: [], error: asApiError(e) };
    }
  };
  // Every layer loads at once; gateways wait for the poles only to borrow their positions.
  const carriersLoaded = wanted.has('carriers')
    ? settle('carriers', () => loadCarriers(api))
    : Promise.resolve(null);
  const poles = carriersLoaded.then(
    (c) => new Map((c?.points ?? []).map((p) => [p.id, [p.lon, p.lat] as [number, number]])),
  );
  const [carriers, ...rest] = await Promise.all([
    carriersLoaded,
    wanted.has('nodes') ? settle('nodes', () => loadNodes(api, poles)) : null,
    wanted.has('ledger') ? settle('ledger', () => loadLedger(api, signal)) : null,
    wanted.has('video') ? settle('video', () => loadVideo(api)) : null,
  ]);
  return [carriers, ...rest].filter((r): r is LayerResult => r !== null);
}
