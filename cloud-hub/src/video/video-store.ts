/**
 * Storage of GB/T 28181 video access: admitted devices with their registration state,
 * channels from Catalog answers, online/offline history and alarms. Same SQL on embedded
 * TimescaleDB and a PostgreSQL server.
 */
import type { AlarmNotify, CatalogItem, DeviceInfoResponse } from '@citysense/protocol';
import type { Queryable } from '../storage/database.ts';

/** A device as the API shows it. */
export interface VideoDeviceRow {
  deviceId: string;
  admitted: boolean;
  name: string | null;
  manufacturer: string | null;
  model: string | null;
  firmware: string | null;
  channelCount: number | null;
  transport: string | null;
  address: string | null;
  port: number | null;
  userAgent: string | null;
  online: boolean;
  registeredAt: Date | null;
  expiresAt: Date | null;
  lastKeepaliveAt: Date | null;
}

/** A channel as the API shows it. */
export interface VideoChannelRow {
  deviceId: string;
  channelId: string;
  name: string | null;
  manufacturer: string | null;
  model: string | null;
  owner: string | null;
  civilCode: string | null;
  address: string | null;
  parentId: string | null;
  status: string | null;
  longitude: number | null;
  latitude: number | null;
  updatedAt: Date;
}

/** A stored alarm. */
export interface VideoAlarmRow {
  time: Date;
  deviceId: string;
  priority: number;
  method: number;
  alarmType: string | null;
  description: string;
  alarmTime: string;
  longitude: number | null;
  latitude: number | null;
}

/** A stored status change. */
export interface VideoStatusRow {
  time: Date;
  deviceId: string;
  online: boolean;
  reason: string;
}

const DEVICE_COLUMNS = `device_id AS "deviceId", admitted, name, manufacturer, model, firmware,
  channel_count AS "channelCount", transport, address, port, user_agent AS "userAgent", online,
  registered_at AS "registeredAt", expires_at AS "expiresAt", last_keepalive_at AS "lastKeepaliveAt"`;

/** Named queries of the video module. */
export class VideoStore {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  /** Admits a device to register (idempotent); a name is kept when given. */
  async admit(deviceId: string, name?: string): Promise<void> {
    await this.#db.query(
      `INSERT INTO video_devices (device_id, admitted, name) VALUES ($1, true, $2)
       ON CONFLICT (device_id) DO UPDATE SET admitted = true, name = COALESCE($2, video_devices.name), updated_at = now()`,
      [deviceId, name ?? null],
    );
  }

  /** Withdraws a device's admission; it is refused at its next REGISTER. */
  async revoke(deviceId: string): Promise<boolean> {
    const r = await this.#db.query(
      'UPDATE video_devices SET admitted = false, updated_at = now() WHERE device_id = $1',
      [deviceId],
    );
    return r.affectedRows > 0;
  }

  /** IDs of admitted devices. */
  async admittedIds(): Promise<string[]> {
    const { rows } = await this.#db.query<{ device_id: string }>(
      'SELECT device_id FROM video_devices WHERE admitted',
    );
    return rows.map((r) => r.device_id);
  }

  /** Records a registration (auto-accepted devices get a row here too). */
  async registered(o: {
    deviceId: string;
    transport: string;
    address: string;
    port: number;
    userAgent: string | undefined;
    registeredAt: number;
    expiresAt: number;
    autoAdmitted: boolean;
  }): Promise<void> {
    await this.#db.query(
      `INSERT INTO video_devices (device_id, admitted, transport, address, port, user_agent, online, registered_at, expires_at, last_keepalive_at)
       VALUES ($1, $2, $3, $4, $5, $6, true, $7, $8, $7)
       ON CONFLICT (device_id) DO UPDATE SET admitted = video_devices.admitted OR $2, transport = $3, address = $4,
         port = $5, user_agent = $6, online = true, registered_at = $7, expires_at = $8, last_keepalive_at = $7, updated_at = now()`,
      [
        o.deviceId,
        o.autoAdmitted,
        o.transport,
        o.address,
        o.port,
        o.userAgent ?? null,
        new Date(o.registeredAt),
        new Date(o.expiresAt),
      ],
    );
  }

  /** Records a status change and the device's current state. */
  async statusChanged(deviceId: string, online: boolean, reason: string, time: number): Promise<void> {
    await this.#db.query(
      'INSERT INTO video_device_events (time, device_id, online, reason) VALUES ($1, $2, $3, $4)',
      [new Date(time), deviceId, online, reason],
    );
    await this.#db.query('UPDATE video_devices SET online = $2, updated_at = now() WHERE device_id = $1', [
      deviceId,
      online,
    ]);
  }

  /** Records the last keepalive times of many devices at once. */
  async keepalives(latest: Map<string, number>): Promise<void> {
    if (latest.size === 0) return;
    await this.#db.query(
      `UPDATE video_devices d SET last_keepalive_at = k.t FROM unnest($1::text[], $2::timestamptz[]) AS k(id, t)
       WHERE d.device_id = k.id`,
      [[...latest.keys()], [...latest.values()].map((t) => new Date(t))],
    );
  }

  /** Stores what DeviceInfo answered. */
  async deviceInfo(info: DeviceInfoResponse): Promise<void> {
    await this.#db.query(
      `UPDATE video_devices SET name = COALESCE(NULLIF($2, ''), name), manufacturer = NULLIF($3, ''), model = NULLIF($4, ''),
         firmware = NULLIF($5, ''), channel_count = $6, updated_at = now() WHERE device_id = $1`,
      [info.deviceId, info.deviceName, info.manufacturer, info.model, info.firmware, info.channel],
    );
  }

  /** Upserts channels of a device from Catalog items; `replace` drops channels not in the list. */
  async channels(deviceId: string, items: CatalogItem[], replace: boolean): Promise<void> {
    const col = <K extends keyof CatalogItem>(k: K) => items.map((i) => i[k] ?? null);
    await this.#db.query(
      `INSERT INTO video_channels (device_id, channel_id, name, manufacturer, model, owner, civil_code, address, parent_id, status, longitude, latitude)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::float8[], $12::float8[])
       ON CONFLICT (device_id, channel_id) DO UPDATE SET name = EXCLUDED.name, manufacturer = EXCLUDED.manufacturer,
         model = EXCLUDED.model, owner = EXCLUDED.owner, civil_code = EXCLUDED.civil_code, address = EXCLUDED.address,
         parent_id = EXCLUDED.parent_id, status = EXCLUDED.status, longitude = EXCLUDED.longitude,
         latitude = EXCLUDED.latitude, updated_at = now()`,
      [
        deviceId,
        col('deviceId'),
        col('name'),
        col('manufacturer'),
        col('model'),
        col('owner'),
        col('civilCode'),
        col('address'),
        col('parentId'),
        col('status'),
        col('longitude'),
        col('latitude'),
      ],
    );
    if (replace)
      await this.#db.query(
        'DELETE FROM video_channels WHERE device_id = $1 AND NOT (channel_id = ANY($2::text[]))',
        [deviceId, items.map((i) => i.deviceId)],
      );
  }

  /** Stores an alarm. */
  async alarm(a: AlarmNotify, receivedAt: number): Promise<void> {
    await this.#db.query(
      `INSERT INTO video_alarms (time, device_id, priority, method, alarm_type, description, alarm_time, longitude, latitude)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        new Date(receivedAt),
        a.deviceId,
        a.priority,
        a.method,
        a.alarmType ?? null,
        a.description,
        a.time,
        a.longitude ?? null,
        a.latitude ?? null,
      ],
    );
  }

  /** Devices, admitted or seen. */
  async listDevices(): Promise<VideoDeviceRow[]> {
    const { rows } = await this.#db.query<VideoDeviceRow>(
      `SELECT ${DEVICE_COLUMNS} FROM video_devices ORDER BY device_id`,
    );
    return rows;
  }

  /** One device. */
  async device(deviceId: string): Promise<VideoDeviceRow | undefined> {
    const { rows } = await this.#db.query<VideoDeviceRow>(
      `SELECT ${DEVICE_COLUMNS} FROM video_devices WHERE device_id = $1`,
      [deviceId],
    );
    return rows[0];
  }

  /** Channels of a device. */
  async listChannels(deviceId: string): Promise<VideoChannelRow[]> {
    const { rows } = await this.#db.query<VideoChannelRow>(
      `SELECT device_id AS "deviceId", channel_id AS "channelId", name, manufacturer, model, owner,
         civil_code AS "civilCode", address, parent_id AS "parentId", status, longitude, latitude, updated_at AS "updatedAt"
       FROM video_channels WHERE device_id = $1 ORDER BY channel_id`,
      [deviceId],
    );
    return rows;
  }

  /** The device that holds a channel, or undefined. */
  async deviceOfChannel(channelId: string): Promise<string | undefined> {
    const { rows } = await this.#db.query<{ device_id: string }>(
      'SELECT device_id FROM video_channels WHERE channel_id = $1 LIMIT 1',
      [channelId],
    );
    return rows[0]?.device_id;
  }

  /** Alarms in a time range, newest first. */
  async listAlarms(q: {
    from: Date;
    to: Date;
    deviceId?: string | undefined;
    limit: number;
  }): Promise<VideoAlarmRow[]> {
    const { rows } = await this.#db.query<VideoAlarmRow>(
      `SELECT time, device_id AS "deviceId", priority, method, alarm_type AS "alarmType", description,
         alarm_time AS "alarmTime", longitude, latitude
       FROM video_alarms WHERE time >= $1 AND time < $2 AND ($3::text IS NULL OR device_id = $3)
       ORDER BY time DESC LIMIT $4`,
      [q.from, q.to, q.deviceId ?? null, q.limit],
    );
    return rows;
  }

  /** Status history of a device, newest first. */
  async statusHistory(deviceId: string, limit: number): Promise<VideoStatusRow[]> {
    const { rows } = await this.#db.query<VideoStatusRow>(
      `SELECT time, device_id AS "deviceId", online, reason FROM video_device_events
       WHERE device_id = $1 ORDER BY time DESC LIMIT $2`,
      [deviceId, limit],
    );
    return rows;
  }

  /** Marks every device offline (hub start: no SIP session survives a restart). */
  async markAllOffline(): Promise<void> {
    await this.#db.query('UPDATE video_devices SET online = false WHERE online');
  }
}
