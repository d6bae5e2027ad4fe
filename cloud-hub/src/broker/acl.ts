import { SPARKPLUG_NAMESPACE } from '@citysense/protocol';

/**
 * Topic access for edge nodes on the embedded broker: a node may publish only its
 * own Sparkplug messages and subscribe only to commands addressed to it and to
 * host STATE (Sparkplug 3.0 §4.1, §5.2). Everything else is refused.
 */
const NODE_PUBLISH_TYPES = new Set(['NBIRTH', 'NDEATH', 'DBIRTH', 'DDEATH', 'NDATA', 'DDATA']);

/** True when node `nodeId` in `groupId` may publish on `topic`. */
export function nodeMayPublish(groupId: string, nodeId: string, topic: string): boolean {
  const parts = topic.split('/');
  if (parts.length < 4 || parts.length > 5) return false;
  const [ns, group, type, node, device] = parts;
  if (ns !== SPARKPLUG_NAMESPACE || group !== groupId || node !== nodeId || !type) return false;
  if (!NODE_PUBLISH_TYPES.has(type)) return false;
  const isDevice = type.startsWith('D');
  return isDevice ? device !== undefined && device.length > 0 : parts.length === 4;
}

/** True when node `nodeId` may subscribe to `filter`. */
export function nodeMaySubscribe(groupId: string, nodeId: string, filter: string): boolean {
  const ns = SPARKPLUG_NAMESPACE;
  if (filter.startsWith(`${ns}/STATE/`)) return true;
  const own = [`${ns}/${groupId}/NCMD/${nodeId}`, `${ns}/${groupId}/DCMD/${nodeId}/`];
  if (filter === own[0] || filter === `${own[0]}/#`) return true;
  const dcmd = own[1] ?? '';
  return filter.startsWith(dcmd) && !filter.slice(dcmd.length).includes('/') && filter.length > dcmd.length;
}
