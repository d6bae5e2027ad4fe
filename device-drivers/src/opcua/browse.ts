/**
 * Discovery of variables under a browse root, and how they are named.
 *
 * Naming: the root becomes one device, id `browse.deviceId` or else the root's browse name with every
 * character Sparkplug ids do not allow replaced by `_`. Every scalar variable reached from the root
 * through Organizes/HasComponent references (hierarchical references other than HasProperty), at most
 * `maxDepth` levels down, becomes one metric named by the browse names on the way, root excluded, joined
 * with `/` and without namespace prefixes: under root `Pole`, the variable `Pole/Lamp/Power` becomes
 * metric `Lamp/Power`. The type follows the variable's built-in DataType (Boolean → bool, integers →
 * int, Float/Double → double, String/LocalizedText → string; any other DataType is skipped) and the unit
 * its EngineeringUnits property (OPC 10000-8 §5.3.2), in UCUM spelling where that differs. Properties
 * (EURange, EngineeringUnits, …) and the children of variables are not metrics. The first of two
 * variables that would get the same metric name wins.
 */
import type { Logger } from '@citysense/protocol';
import type { ClientSession, ReferenceDescription } from 'node-opcua';
import type { OpcUaBrowseConfig } from './config.ts';
import type { NodeOpcua } from './runtime.ts';
import { metricTypeOfDataType, type OpcUaMetricType, unitOfDisplayName } from './values.ts';

/** One variable discovered under the browse root. */
export interface DiscoveredVariable {
  nodeId: string;
  metric: string;
  type: OpcUaMetricType;
  unit?: string | undefined;
}

/** The device a browse root maps to. */
export interface DiscoveredDevice {
  id: string;
  kind: string;
  variables: DiscoveredVariable[];
}

/** NodeClass bits (OPC 10000-4 §7.30 / BrowseDescription nodeClassMask). */
const OBJECT = 1;
const VARIABLE = 2;
/** HasProperty reference type (OPC 10000-5 §11.3). */
const HAS_PROPERTY = 46;

/** A device id from a browse name: characters outside [A-Za-z0-9_.:-] become `_`, at most 64 long. */
export function deviceIdOfBrowseName(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 64);
  return /^[A-Za-z0-9]/.test(id) ? id : `d${id}`.slice(0, 64);
}

/** Browses below `config.root` and maps what it finds to one device (see the module comment). */
export async function discoverDevice(
  opcua: NodeOpcua,
  session: ClientSession,
  config: Readonly<OpcUaBrowseConfig>,
  log: Logger,
): Promise<DiscoveredDevice> {
  const rootName = await session.read({ nodeId: config.root, attributeId: opcua.AttributeIds.BrowseName });
  if (!rootName.statusCode.isGood()) {
    throw new Error(`browse root ${config.root} cannot be read: ${rootName.statusCode.name}`);
  }
  const rootBrowseName = String((rootName.value.value as { name?: unknown } | null)?.name ?? config.root);
  const id = config.deviceId ?? deviceIdOfBrowseName(rootBrowseName);

  const candidates: { nodeId: string; path: string }[] = [];
  let level: { nodeId: string; path: string }[] = [{ nodeId: config.root, path: '' }];
  const seen = new Set<string>([config.root]);
  for (let depth = 1; depth <= config.maxDepth && level.length > 0; depth++) {
    const results = await session.browse(
      level.map((n) => ({
        nodeId: n.nodeId,
        browseDirection: opcua.BrowseDirection.Forward,
        referenceTypeId: 'HierarchicalReferences',
        includeSubtypes: true,
        nodeClassMask: OBJECT | VARIABLE,
        resultMask: 0x3f,
      })),
    );
    const next: { nodeId: string; path: string }[] = [];
    results.forEach((result, i) => {
      const parent = level[i];
      if (!parent) return;
      for (const ref of referencesOf(result.references)) {
        if (ref.referenceTypeId.namespace === 0 && ref.referenceTypeId.value === HAS_PROPERTY) continue;
        const nodeId = ref.nodeId.toString();
        if (seen.has(nodeId)) continue;
        seen.add(nodeId);
        const path = parent.path ? `${parent.path}/${ref.browseName.name}` : String(ref.browseName.name);
        if (ref.nodeClass === opcua.NodeClass.Variable) candidates.push({ nodeId, path });
        else next.push({ nodeId, path });
      }
    });
    level = next;
  }

  const attributes = await session.read(
    candidates.flatMap((c) => [
      { nodeId: c.nodeId, attributeId: opcua.AttributeIds.DataType },
      { nodeId: c.nodeId, attributeId: opcua.AttributeIds.ValueRank },
    ]),
  );
  const typed: (DiscoveredVariable & { index: number })[] = [];
  const names = new Set<string>();
  candidates.forEach((c, i) => {
    const dataType = attributes[2 * i]?.value.value as { namespace?: unknown; value?: unknown } | null;
    const valueRank = attributes[2 * i + 1]?.value.value;
    const type = metricTypeOfDataType(Number(dataType?.namespace), dataType?.value);
    if (type === undefined || (typeof valueRank === 'number' && valueRank >= 0)) {
      log.debug(
        { nodeId: c.nodeId, path: c.path },
        'browse: variable of an unmapped type or not scalar, skipped',
      );
      return;
    }
    if (names.has(c.path)) {
      log.warn({ nodeId: c.nodeId, metric: c.path }, 'browse: a second variable with the same name, skipped');
      return;
    }
    names.add(c.path);
    typed.push({ nodeId: c.nodeId, metric: c.path, type, index: typed.length });
  });

  // Units: the EngineeringUnits property of each variable, read in one round trip.
  const properties = await session.browse(
    typed.map((v) => ({
      nodeId: v.nodeId,
      browseDirection: opcua.BrowseDirection.Forward,
      referenceTypeId: 'HasProperty',
      includeSubtypes: true,
      nodeClassMask: VARIABLE,
      resultMask: 0x3f,
    })),
  );
  const unitNodes: { variable: number; nodeId: string }[] = [];
  properties.forEach((result, i) => {
    const eu = referencesOf(result.references).find((r) => r.browseName.name === 'EngineeringUnits');
    if (eu) unitNodes.push({ variable: i, nodeId: eu.nodeId.toString() });
  });
  if (unitNodes.length > 0) {
    const units = await session.read(
      unitNodes.map((u) => ({ nodeId: u.nodeId, attributeId: opcua.AttributeIds.Value })),
    );
    unitNodes.forEach((u, i) => {
      const info = units[i]?.value.value as { displayName?: { text?: unknown } } | null;
      const text = info?.displayName?.text;
      const variable = typed[u.variable];
      if (variable && typeof text === 'string' && text.length > 0) variable.unit = unitOfDisplayName(text);
    });
  }
  return {
    id,
    kind: config.kind,
    variables: typed.map(({ index: _, ...v }) => v),
  };
}

function referencesOf(references: ReferenceDescription[] | null | undefined): ReferenceDescription[] {
  return references ?? [];
}
