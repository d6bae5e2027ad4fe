/**
 * The catalog a gateway shows its upper platform (GB/T 28181-2016 §9.5.2, §9.11 for a
 * cascaded platform): the gateway itself, one item per device registered with its lower
 * platform (ParentID the gateway) and every channel those devices reported (ParentID the
 * device). A channel whose ID is its device's (a plain IPC) is folded into the device item.
 * Every change returns what the upper platform must be told: items added (ADD), gone (DEL),
 * switched ON/OFF, or otherwise changed (UPDATE).
 */
import type { CatalogChange, CatalogItem, CatalogStatus } from '@citysense/protocol';

/** Who the gateway is. */
export interface CascadeCatalogOptions {
  /** 20-digit ID of the gateway as a platform (type 200). */
  localId: string;
  name: string;
}

interface KnownDevice {
  online: boolean;
  channels: Map<string, CatalogItem>;
}

/** The devices and channels behind a gateway. Constructor assigns only. */
export class CascadeCatalog {
  readonly #o: CascadeCatalogOptions;
  readonly #devices = new Map<string, KnownDevice>();

  constructor(options: CascadeCatalogOptions) {
    this.#o = options;
  }

  /** Every item now: the gateway, its devices, their channels. */
  items(): CatalogItem[] {
    const list: CatalogItem[] = [this.#gatewayItem()];
    for (const [deviceId, device] of this.#devices) {
      list.push(this.#deviceItem(deviceId, device));
      for (const channel of device.channels.values())
        if (channel.deviceId !== deviceId) list.push(channelItem(deviceId, device, channel));
    }
    return list;
  }

  /** The device that serves `channelId` (the device itself for its own ID), or undefined. */
  ownerOf(channelId: string): string | undefined {
    if (this.#devices.has(channelId)) return channelId;
    for (const [deviceId, device] of this.#devices) if (device.channels.has(channelId)) return deviceId;
    return undefined;
  }

  /** True when the device is known and registered. */
  isOnline(deviceId: string): boolean {
    return this.#devices.get(deviceId)?.online ?? false;
  }

  /** A device registered, came back or went offline. */
  deviceStatus(deviceId: string, online: boolean): CatalogChange[] {
    return this.#change(() => {
      const device = this.#device(deviceId);
      device.online = online;
    });
  }

  /**
   * Channels a device reported. A query answer (no item has `event`) replaces the device's
   * channels; a subscription NOTIFY (items with `event`) changes only the items it names:
   * DEL removes, ON / OFF / VLOST / DEFECT set the status (VLOST and DEFECT count as OFF),
   * ADD / UPDATE replace the item.
   */
  deviceCatalog(deviceId: string, items: readonly CatalogItem[]): CatalogChange[] {
    return this.#change(() => {
      const device = this.#device(deviceId);
      // A device that talks to the platform is registered.
      device.online = true;
      const incremental = items.some((i) => i.event !== undefined);
      if (!incremental) device.channels.clear();
      for (const { event, ...item } of items) {
        const known = device.channels.get(item.deviceId);
        if (event === 'DEL') device.channels.delete(item.deviceId);
        else if (event === 'ON' || event === 'OFF' || event === 'VLOST' || event === 'DEFECT')
          device.channels.set(item.deviceId, { ...(known ?? item), status: event === 'ON' ? 'ON' : 'OFF' });
        else device.channels.set(item.deviceId, item);
      }
    });
  }

  /** Applies `mutate` and returns the difference it made to `items()`. */
  #change(mutate: () => void): CatalogChange[] {
    const before = new Map(this.items().map((i) => [i.deviceId, i]));
    mutate();
    const changes: CatalogChange[] = [];
    const after = this.items();
    for (const item of after) {
      const old = before.get(item.deviceId);
      before.delete(item.deviceId);
      if (!old) changes.push({ ...item, event: 'ADD' });
      else if (old.status !== item.status) changes.push({ ...item, event: item.status ?? 'ON' });
      else if (!sameItem(old, item)) changes.push({ ...item, event: 'UPDATE' });
    }
    for (const gone of before.values()) changes.push({ deviceId: gone.deviceId, event: 'DEL' });
    return changes;
  }

  #device(deviceId: string): KnownDevice {
    let device = this.#devices.get(deviceId);
    if (!device) {
      device = { online: false, channels: new Map() };
      this.#devices.set(deviceId, device);
    }
    return device;
  }

  #gatewayItem(): CatalogItem {
    const id = this.#o.localId;
    return {
      deviceId: id,
      name: this.#o.name,
      manufacturer: 'citysense',
      model: 'citysense-gb28181-gateway',
      civilCode: id.slice(0, 6),
      parental: '1',
      registerWay: '1',
      secrecy: '0',
      status: 'ON',
    };
  }

  #deviceItem(deviceId: string, device: KnownDevice): CatalogItem {
    // A plain IPC reports one channel with its own ID: its name and place describe the device.
    const self = device.channels.get(deviceId);
    const children = [...device.channels.keys()].some((id) => id !== deviceId);
    return {
      ...self,
      deviceId,
      name: self?.name ?? deviceId,
      civilCode: self?.civilCode ?? deviceId.slice(0, 6),
      parental: children ? '1' : '0',
      parentId: this.#o.localId,
      registerWay: self?.registerWay ?? '1',
      secrecy: self?.secrecy ?? '0',
      status: device.online ? (self?.status ?? 'ON') : 'OFF',
    };
  }
}

/** A channel as the upper platform sees it: under its device, OFF while the device is offline. */
function channelItem(deviceId: string, device: KnownDevice, channel: CatalogItem): CatalogItem {
  const status: CatalogStatus = device.online ? (channel.status ?? 'ON') : 'OFF';
  return { ...channel, parentId: deviceId, status };
}

/** Field-by-field equality, whatever the key order. */
function sameItem(a: CatalogItem, b: CatalogItem): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)] as Array<keyof CatalogItem>);
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}
