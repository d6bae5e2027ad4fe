/**
 * Where a device's catalog comes from. A camera has a fixed list; a gateway's list follows
 * the devices behind it, so it is read through a function each time it is needed and the
 * owner calls `Gb28181Device.notifyCatalog()` with what changed (GB/T 28181-2016 §9.11.2).
 */
import { type CatalogItem, isGbId } from '@citysense/protocol';

/** The catalog items a device serves: a fixed list, or a function read on every use. */
export type ChannelSource = readonly CatalogItem[] | (() => readonly CatalogItem[]);

/** The items of a source now. */
export function channelsOf(source: ChannelSource): readonly CatalogItem[] {
  return typeof source === 'function' ? source() : source;
}

/**
 * The items a Catalog query for `deviceId` answers: everything for the device itself,
 * else the children of that item (a camera channel has none, so its catalog is empty).
 */
export function catalogFor(items: readonly CatalogItem[], ownId: string, deviceId: string): CatalogItem[] {
  return deviceId === ownId ? [...items] : items.filter((i) => i.parentId === deviceId);
}

/** Problems of a fixed list: IDs that are not 20-digit GB/T 28181 IDs, IDs listed twice. */
export function channelProblems(items: readonly CatalogItem[]): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const item of items) {
    if (!isGbId(item.deviceId)) problems.push(`channel "${item.deviceId}" is not a 20-digit GB/T 28181 ID`);
    if (ids.has(item.deviceId)) problems.push(`channel "${item.deviceId}" is listed twice`);
    ids.add(item.deviceId);
  }
  return problems;
}
