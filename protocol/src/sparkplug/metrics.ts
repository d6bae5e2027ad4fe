/**
 * Metric names with a meaning fixed by the Sparkplug specification or by citysense.
 * Hub and agent import these; nothing re-declares them.
 */

/** Sparkplug 3.0 §6.4.5: NBIRTH/NDEATH session number. */
export const BD_SEQ = 'bdSeq';
/** Sparkplug 3.0 §6.4.7: NCMD asking the node to publish its births again. */
export const REBIRTH = 'Node Control/Rebirth';

/** NCMD metric (Bytes, `citysense.v1.SpoolAck`): records committed by the hub. */
export const SPOOL_ACK = 'citysense/Spool Ack';
/** NDATA/DDATA metric (UInt64): the spool record id of this message, so the hub can ack it. */
export const SPOOL_ID = 'citysense/Spool Id';

/** Prefix of node health metrics in NDATA; stored in `node_health`, not in `readings`. */
export const HEALTH_PREFIX = 'Health/';

/** Node health metrics an agent reports, with their Sparkplug datatype names and units. */
export const HEALTH_METRICS = {
  cpuPercent: 'Health/CPU Percent',
  memoryPercent: 'Health/Memory Percent',
  diskPercent: 'Health/Disk Percent',
  temperatureC: 'Health/Temperature C',
  uptimeS: 'Health/Uptime S',
  spoolBytes: 'Health/Spool Bytes',
  spoolRecords: 'Health/Spool Records',
  spoolAgeS: 'Health/Spool Age S',
  droppedRecords: 'Health/Dropped Records',
  linkRttMs: 'Health/Link RTT Ms',
} as const;

/** Node properties reported once in NBIRTH. */
export const NODE_PROPERTIES = {
  agentVersion: 'Properties/Agent Version',
} as const;
