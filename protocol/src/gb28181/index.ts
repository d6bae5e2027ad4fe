/** GB/T 28181 MANSCDP message codec: decode received bodies, encode queries and cascaded responses. */
export { alarmMatches } from './alarm-filter.ts';
export { CatalogAssembler } from './catalog-assembler.ts';
export { DEFAULT_MANSCDP_CHARSET, declaredCharset, type ManscdpCharset } from './charset.ts';
export { DEFAULT_MANSCDP_MAX_BYTES, type DecodeManscdpOptions, decodeManscdp } from './decode.ts';
export { type EncodeManscdpOptions, encodeManscdp, escapeXml } from './encode.ts';
export { MANSCDP_INVALID } from './manscdp-error.ts';
export {
  buildGbSdp,
  GB_SDP_UNACCEPTABLE,
  type GbMediaDescription,
  type GbMediaTransport,
  type GbSdpOptions,
  liveSsrc,
  parseGbSdp,
} from './sdp.ts';
export type {
  AlarmFilter,
  AlarmNotify,
  AlarmPriorityBound,
  AlarmQuery,
  CatalogChange,
  CatalogEvent,
  CatalogItem,
  CatalogNotifyOut,
  CatalogResponse,
  CatalogResponseOut,
  CatalogStatus,
  DeviceInfoResponse,
  DeviceQuery,
  DeviceStatusResponse,
  KeepaliveNotify,
  ManscdpMessage,
  ManscdpOutgoing,
  ManscdpQuery,
  UnknownManscdp,
} from './types.ts';
