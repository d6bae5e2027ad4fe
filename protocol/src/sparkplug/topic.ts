import { CitysenseError } from '../errors.ts';

/** Sparkplug B namespace element, Sparkplug 3.0 §4.1.1. */
export const SPARKPLUG_NAMESPACE = 'spBv1.0';

/** Edge-node and device message types, Sparkplug 3.0 §4.1.2. */
export const MESSAGE_TYPES = [
  'NBIRTH',
  'NDEATH',
  'DBIRTH',
  'DDEATH',
  'NDATA',
  'DDATA',
  'NCMD',
  'DCMD',
] as const;
/** One Sparkplug message type. */
export type MessageType = (typeof MESSAGE_TYPES)[number];

const DEVICE_TYPES: ReadonlySet<string> = new Set(['DBIRTH', 'DDEATH', 'DDATA', 'DCMD']);

/** A parsed edge-node or device topic. */
export interface SparkplugTopic {
  group: string;
  type: MessageType;
  node: string;
  device?: string | undefined;
}

/** Formats `spBv1.0/{group}/{type}/{node}[/{device}]`. */
export function formatTopic(t: SparkplugTopic): string {
  const base = `${SPARKPLUG_NAMESPACE}/${t.group}/${t.type}/${t.node}`;
  return t.device === undefined ? base : `${base}/${t.device}`;
}

/** The host application STATE topic, Sparkplug 3.0 §4.1.3: `spBv1.0/STATE/{hostId}`. */
export function stateTopic(hostId: string): string {
  return `${SPARKPLUG_NAMESPACE}/STATE/${hostId}`;
}

/**
 * Parses an edge-node or device topic. Throws CS_ERR_TOPIC_INVALID for anything
 * else, including STATE topics and device types without a device id.
 */
export function parseTopic(topic: string): SparkplugTopic {
  const parts = topic.split('/');
  const [ns, group, type, node, device] = parts;
  const invalid = (why: string) =>
    new CitysenseError(
      'CS_ERR_TOPIC_INVALID',
      `topic "${topic.slice(0, 200)}" is not a Sparkplug B topic: ${why}`,
      400,
    );
  if (ns !== SPARKPLUG_NAMESPACE) throw invalid(`namespace must be ${SPARKPLUG_NAMESPACE}`);
  if (parts.length < 4 || parts.length > 5) throw invalid('expected namespace/group/type/node[/device]');
  if (!group || !node || !type) throw invalid('empty element');
  if (!(MESSAGE_TYPES as readonly string[]).includes(type)) throw invalid(`unknown message type ${type}`);
  const isDevice = DEVICE_TYPES.has(type);
  if (isDevice && !device) throw invalid(`${type} needs a device id`);
  if (!isDevice && device !== undefined) throw invalid(`${type} takes no device id`);
  return { group, type: type as MessageType, node, device };
}
