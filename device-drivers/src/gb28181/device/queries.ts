/**
 * A device's answers to platform queries (GB/T 28181-2016 §9.5): the MESSAGE is answered
 * 200 by the caller, then the answer goes out as the device's own MESSAGE(s) with the
 * query's SN. Catalog answers are paged: `SumNum` in all, `DeviceList Num` per message.
 */
import {
  type CatalogItem,
  errorMessage,
  type Logger,
  type ManscdpOutgoing,
  type ManscdpQuery,
} from '@citysense/protocol';
import type { SipResponse } from '../sip/index.ts';
import { catalogFor } from './channels.ts';

/** What a device says about itself in DeviceInfo. */
export interface DeviceIdentity {
  name: string;
  manufacturer: string;
  model: string;
  firmware: string;
}

/** What answering needs from the device. */
export interface QueryContext {
  deviceId: string;
  identity: DeviceIdentity;
  items: readonly CatalogItem[];
  pageSize: number;
  log: Logger;
  send: (message: ManscdpOutgoing) => Promise<SipResponse>;
  onCatalogPage: () => void;
}

/** Sends the answer to `query`; a refused Catalog page stops the paging. */
export async function answerQuery(ctx: QueryContext, query: ManscdpQuery): Promise<void> {
  const { sn, deviceId } = query;
  const own = deviceId === ctx.deviceId;
  const item = own ? undefined : ctx.items.find((i) => i.deviceId === deviceId);
  switch (query.cmdType) {
    case 'Catalog': {
      const items = catalogFor(ctx.items, ctx.deviceId, deviceId);
      for (let from = 0; from === 0 || from < items.length; from += ctx.pageSize) {
        const page = items.slice(from, from + ctx.pageSize);
        const response = await ctx.send({
          kind: 'catalogResponse',
          sn,
          deviceId,
          sumNum: items.length,
          items: page,
        });
        ctx.onCatalogPage();
        if (response.status >= 300) {
          ctx.log.warn({ sn, status: response.status }, 'platform refused a Catalog page; stopping');
          return;
        }
      }
      return;
    }
    case 'DeviceInfo': {
      const children = own ? ctx.items.length : catalogFor(ctx.items, ctx.deviceId, deviceId).length;
      await ctx.send({
        kind: 'deviceInfo',
        sn,
        deviceId,
        deviceName: item ? (item.name ?? '') : ctx.identity.name,
        manufacturer: item?.manufacturer ?? ctx.identity.manufacturer,
        model: item?.model ?? ctx.identity.model,
        firmware: ctx.identity.firmware,
        // A channel counts itself; a parent item (an NVR behind a gateway) its children.
        channel: own ? children : Math.max(children, 1),
        result: 'OK',
      });
      return;
    }
    case 'DeviceStatus': {
      const on = item === undefined || item.status !== 'OFF';
      await ctx.send({
        kind: 'deviceStatus',
        sn,
        deviceId,
        online: on,
        status: on ? 'OK' : 'ERROR',
        result: 'OK',
      });
      return;
    }
    case 'Alarm':
      // A MESSAGE asking for past alarms (§A.2.4 e): the device keeps none, so the 200 is all.
      ctx.log.debug({ sn }, 'alarm query not answered: no alarm history kept');
      return;
  }
}

/** The `Warning` header value that says why a request was refused. */
export function warning(err: unknown): string {
  return `399 citysense "${errorMessage(err).replace(/"/g, "'").slice(0, 120)}"`;
}
