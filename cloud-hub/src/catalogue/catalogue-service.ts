/**
 * Reuse before build (001 Art. 45: agency B reads agency A's device instead of building
 * its own) and the sensing data catalogue (001 Art. 48: resources graded and classified,
 * shared as raw, desensitised or analysis results on application).
 *
 * Who may read what is decided here, server side, on every data request:
 * - the platform (admin token, platform-admin) and the owner agency's operators read raw;
 * - an agency with an approved share of a device reads that device's data, raw;
 * - an agency with a granted application reads a resource in the granted form only.
 * Anything else is CS_ERR_DATA_NOT_GRANTED (403). Data come from the existing stores
 * (`ReadingStore`, `AnalyticsStore`) and are transformed here before they leave:
 *
 * | form           | readings                                   | detections                           |
 * | -------------- | ------------------------------------------ | ------------------------------------ |
 * | `raw`          | rows as stored, codes, nodes, positions    | rows as stored, with boxes           |
 * | `desensitised` | per pseudonym, bucketed (rule, ≥ 15 min)   | labels and counts per pseudonym      |
 * | `analysis`     | mean and count over every device, bucketed | objects and frames over every device |
 *
 * A ledger device's data are found by its unified code: readings are the series whose
 * Sparkplug device id is the code, detections the streams whose video source is the code
 * (GB/T 28181 channel ids are ledger codes already). A resource covers at most
 * `maxDevices` devices of its kind (code order).
 */
import { randomUUID } from 'node:crypto';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { AnalyticsStore, DetectionCountRow, DetectionRow } from '../analytics/analytics-store.ts';
import type { PersonPrincipal } from '../auth/access.ts';
import { can } from '../auth/access.ts';
import type { DeviceFilter, LedgerDevice } from '../ledger/ledger-store.ts';
import type { Database } from '../storage/database.ts';
import type { ReadingBucketRow, ReadingRow, ReadingStore, ReadingValue } from '../telemetry/reading-store.ts';
import {
  type AccessApplication,
  type ApplicationStatus,
  CatalogueStore,
  type DataResource,
  type DeviceShare,
  type ResourceDataType,
  type ShareStatus,
} from './catalogue-store.ts';
import {
  type AggregateBucket,
  BUCKET_SECONDS,
  coarsen,
  DATA_FORMS,
  type DataForm,
  DEFAULT_RULE,
  type DesensitisationRule,
  FORM_DETAIL,
  FORMS_BY_GRADE,
  Pseudonymiser,
} from './desensitise.ts';

/** The part of the ledger the catalogue reads: devices, their owner, kind and position. */
export interface LedgerDevices {
  device(code: string): Promise<LedgerDevice>;
  list(filter: DeviceFilter): Promise<LedgerDevice[]>;
}

/** Options of the catalogue. */
export interface CatalogueServiceOptions {
  db: Database;
  ledger: LedgerDevices;
  readings: ReadingStore;
  analytics: AnalyticsStore;
  /** Most devices one resource request covers; default 1000. */
  maxDevices?: number;
  /** Store queries run at once for one request; default 8. */
  concurrency?: number;
  logger?: Logger;
}

/** A decision on a share. */
export type ShareDecision = 'approve' | 'refuse' | 'revoke';
/** A decision on an access application. */
export type ApplicationDecision = 'grant' | 'refuse' | 'revoke';

/** A resource as given to create or change it. */
export type ResourceInput = Omit<
  DataResource,
  'createdAt' | 'updatedAt' | 'rule' | 'description' | 'ownerAgency'
> & {
  rule?: Partial<DesensitisationRule> | undefined;
  description?: string | null | undefined;
  ownerAgency?: string | null | undefined;
};

/** What a data request asks for. */
export interface DataRequest {
  resource?: string | undefined;
  /** Unified code of one ledger device. */
  device?: string | undefined;
  /** The form wanted; default the most detailed one held. */
  form?: DataForm | undefined;
  /** Metric (readings) or label (detections) when reading a device without a resource. */
  item?: string | undefined;
  from: Date;
  to: Date;
  /** Bucket of aggregated forms; never finer than the resource's rule. */
  bucket?: AggregateBucket | undefined;
  limit: number;
}

/** Why a reader may read. */
export type AccessBasis = 'platform' | 'owner' | 'share' | 'grant';

/** What a data request resolved to. */
export interface DataAccess {
  form: DataForm;
  basis: AccessBasis;
  resource: DataResource | null;
  devices: LedgerDevice[];
  item: string | undefined;
  rule: DesensitisationRule;
}

/** A device as delivered: exact or coarsened position, code or pseudonym. */
export interface DeliveredDevice {
  device: string;
  kind: string;
  longitude: number;
  latitude: number;
}

/** Readings in the granted form. */
export type ReadingDelivery =
  | { form: 'raw'; resource: string | null; devices: DeliveredDevice[]; readings: RawReading[] }
  | {
      form: 'desensitised';
      resource: string | null;
      bucket: AggregateBucket;
      devices: DeliveredDevice[];
      readings: ReadingAggregate[];
    }
  | { form: 'analysis'; resource: string | null; bucket: AggregateBucket; aggregates: ReadingAnalysis[] };

/** One stored reading of a device. */
export interface RawReading {
  time: string;
  device: string;
  node: string;
  metric: string;
  value: ReadingValue;
  quality: number;
}

/** A bucket of one (pseudonymous) device's readings. */
export interface ReadingAggregate {
  bucket: string;
  device: string;
  metric: string;
  avg: number | null;
  min: number | null;
  max: number | null;
  count: number;
}

/** A bucket of every device's readings of a metric: no device, no single value. */
export interface ReadingAnalysis {
  bucket: string;
  metric: string;
  mean: number | null;
  count: number;
  devices: number;
}

/** Detections in the granted form. */
export type DetectionDelivery =
  | { form: 'raw'; resource: string | null; devices: DeliveredDevice[]; detections: RawDetection[] }
  | {
      form: 'desensitised';
      resource: string | null;
      bucket: AggregateBucket;
      devices: DeliveredDevice[];
      counts: DetectionAggregate[];
    }
  | { form: 'analysis'; resource: string | null; bucket: AggregateBucket; aggregates: DetectionAnalysis[] };

/** One detection as stored, with its device code. */
export type RawDetection = Omit<DetectionRow, 'time'> & { time: string; device: string };

/** Objects of a label seen by one (pseudonymous) device in a bucket: labels and counts only. */
export interface DetectionAggregate {
  bucket: string;
  device: string;
  label: string;
  objects: number;
  frames: number;
  peak: number;
}

/** Objects of a label seen by every device in a bucket. */
export interface DetectionAnalysis {
  bucket: string;
  label: string;
  objects: number;
  frames: number;
  devices: number;
}

const READER_ROLES = ['agency-operator', 'platform-admin'] as const;

const notFound = (what: string, id: string, hint: string) =>
  new CitysenseError('CS_ERR_CATALOGUE_NOT_FOUND', `${what} ${id} does not exist: ${hint}`, 404, { id });

const forbidden = (message: string, details?: unknown) =>
  new CitysenseError('CS_ERR_AUTH_FORBIDDEN', message, 403, details);

/** Refused data access: coded, and audited by the route. */
export const notGranted = (message: string, details?: unknown) =>
  new CitysenseError('CS_ERR_DATA_NOT_GRANTED', message, 403, details);

/** Sharing of ledger devices and the sensing data catalogue. */
export class CatalogueService {
  readonly store: CatalogueStore;
  readonly #o: CatalogueServiceOptions;
  readonly #log: Logger;
  #pseudonyms: Pseudonymiser | undefined;
  #starting: Promise<void> | undefined;

  constructor(options: CatalogueServiceOptions) {
    this.#o = options;
    this.store = new CatalogueStore(options.db);
    this.#log = componentLogger('catalogue', options.logger);
  }

  /** Loads (or creates) the pseudonym key; idempotent. */
  start(): Promise<void> {
    this.#starting ??= this.store.pseudonymKey().then(
      (key) => {
        this.#pseudonyms = new Pseudonymiser(key);
      },
      (err: unknown) => {
        this.#starting = undefined;
        throw err;
      },
    );
    return this.#starting;
  }

  /** Nothing to release; kept for the component contract. */
  async stop(): Promise<void> {}

  // ---- device sharing ----

  /** Agency B applies to read agency A's device. */
  async applyForShare(
    who: PersonPrincipal,
    input: { device: string; purpose: string; agency?: string | undefined },
  ): Promise<DeviceShare> {
    const applicant = applicantAgency(who, input.agency);
    const device = await this.#o.ledger.device(input.device);
    if (device.ownerAgency === applicant)
      throw new CitysenseError(
        'CS_ERR_CATALOGUE_OWN_DEVICE',
        `device ${device.code} belongs to ${applicant} already: owners read their own devices without a share`,
        409,
      );
    if (device.state === 'retired')
      throw new CitysenseError(
        'CS_ERR_CATALOGUE_DEVICE_RETIRED',
        `device ${device.code} is retired and produces no data to share`,
        409,
      );
    return this.#unique(
      () =>
        this.store.insertShare({
          id: randomUUID(),
          deviceCode: device.code,
          ownerAgency: device.ownerAgency,
          applicantAgency: applicant,
          purpose: input.purpose,
          appliedBy: actorId(who),
        }),
      `${applicant} already has an open share of device ${device.code}: see GET /v1/catalogue/shares`,
    );
  }

  /** A share, if the caller may see it (platform, owner or applicant agency). */
  async share(who: PersonPrincipal, id: string): Promise<DeviceShare> {
    const share = await this.store.share(id);
    if (!share) throw notFound('share', id, 'list shares with GET /v1/catalogue/shares');
    if (
      !can(who, READER_ROLES, { agencyId: share.ownerAgency }) &&
      !can(who, READER_ROLES, { agencyId: share.applicantAgency })
    )
      throw forbidden(
        `share ${id} is visible to agencies ${share.ownerAgency} and ${share.applicantAgency} only`,
      );
    return share;
  }

  /** Shares of the caller's agency (every share for the platform). */
  shares(who: PersonPrincipal, status: ShareStatus | undefined, limit: number): Promise<DeviceShare[]> {
    return this.store.shares(scopeAgency(who), status, limit);
  }

  /**
   * The owner decides: approve or refuse a pending share, revoke an approved one. Of
   * concurrent decisions exactly one lands; the others get 409 CS_ERR_CATALOGUE_DECIDED.
   */
  async decideShare(
    who: PersonPrincipal,
    id: string,
    decision: ShareDecision,
    comment: string | undefined,
  ): Promise<{ before: DeviceShare; after: DeviceShare }> {
    const before = await this.store.share(id);
    if (!before) throw notFound('share', id, 'list shares with GET /v1/catalogue/shares');
    if (!can(who, READER_ROLES, { agencyId: before.ownerAgency }))
      throw forbidden(
        `only operators of ${before.ownerAgency}, which owns device ${before.deviceCode}, decide share ${id}`,
        {
          needed: ['agency-operator', 'platform-admin'],
          scope: { agencyId: before.ownerAgency },
        },
      );
    const [from, to]: [ShareStatus, ShareStatus] =
      decision === 'approve'
        ? ['pending', 'approved']
        : decision === 'refuse'
          ? ['pending', 'refused']
          : ['approved', 'revoked'];
    const after = await this.store.decideShare({
      id,
      from,
      to,
      decidedBy: actorId(who),
      comment: comment ?? null,
    });
    if (after) return { before, after };
    const now = await this.store.share(id);
    throw decided('share', id, from, now?.status ?? before.status);
  }

  // ---- data resources ----

  /** Adds a resource to the catalogue (platform-admin; the route checks). */
  async createResource(input: ResourceInput): Promise<DataResource> {
    const resource = checkResource(input);
    return this.#unique(
      () => this.store.insertResource(resource),
      `resource ${input.id} exists: change it with PATCH /v1/catalogue/resources/${input.id}`,
    );
  }

  /** Changes a resource; a form no longer offered stops being delivered, grants or not. */
  async updateResource(
    id: string,
    patch: Partial<Omit<ResourceInput, 'id'>>,
  ): Promise<{ before: DataResource; after: DataResource }> {
    const before = await this.resource(id);
    const merged: ResourceInput = {
      ...before,
      ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)),
      rule: { ...before.rule, ...patch.rule },
      id,
    };
    const after = await this.store.updateResource(checkResource(merged));
    if (!after) throw notFound('resource', id, 'list resources with GET /v1/catalogue/resources');
    return { before, after };
  }

  /** One resource. */
  async resource(id: string): Promise<DataResource> {
    const resource = await this.store.resource(id);
    if (!resource) throw notFound('resource', id, 'list resources with GET /v1/catalogue/resources');
    return resource;
  }

  /** The catalogue. */
  resources(filter: {
    deviceKind?: string | undefined;
    category?: string | undefined;
  }): Promise<DataResource[]> {
    return this.store.resources(filter);
  }

  // ---- access applications ----

  /** An agency applies for a resource in one offered form. */
  async applyForAccess(
    who: PersonPrincipal,
    input: { resource: string; form: DataForm; purpose: string; agency?: string | undefined },
  ): Promise<AccessApplication> {
    const applicant = applicantAgency(who, input.agency);
    const resource = await this.resource(input.resource);
    if (!resource.forms.includes(input.form))
      throw new CitysenseError(
        'CS_ERR_CATALOGUE_FORM',
        `resource ${resource.id} is not offered as ${input.form}; it is offered as ${resource.forms.join(', ')}`,
        400,
        { offered: resource.forms },
      );
    if (resource.ownerAgency === applicant)
      throw new CitysenseError(
        'CS_ERR_CATALOGUE_OWN_RESOURCE',
        `resource ${resource.id} belongs to ${applicant}: its operators read it raw without an application`,
        409,
      );
    return this.#unique(
      () =>
        this.store.insertApplication({
          id: randomUUID(),
          resourceId: resource.id,
          applicantAgency: applicant,
          form: input.form,
          purpose: input.purpose,
          appliedBy: actorId(who),
        }),
      `${applicant} already has an open application for ${resource.id} as ${input.form}: see GET /v1/catalogue/applications`,
    );
  }

  /** Applications of the caller's agency, filed or to decide (every one for the platform). */
  applications(
    who: PersonPrincipal,
    status: ApplicationStatus | undefined,
    limit: number,
  ): Promise<AccessApplication[]> {
    return this.store.applications(scopeAgency(who), status, limit);
  }

  /**
   * The resource's owner agency (or the platform for city-wide resources) grants or refuses
   * a pending application, or revokes a grant; concurrent decisions resolve to one outcome.
   */
  async decideApplication(
    who: PersonPrincipal,
    id: string,
    decision: ApplicationDecision,
    comment: string | undefined,
  ): Promise<{ before: AccessApplication; after: AccessApplication }> {
    const before = await this.store.application(id);
    if (!before) throw notFound('application', id, 'list applications with GET /v1/catalogue/applications');
    const resource = await this.resource(before.resourceId);
    const decides =
      resource.ownerAgency === null
        ? can(who, 'platform-admin')
        : can(who, READER_ROLES, { agencyId: resource.ownerAgency });
    if (!decides)
      throw forbidden(
        `applications for ${resource.id} are decided by ${resource.ownerAgency ? `operators of ${resource.ownerAgency}` : 'the platform admin'}`,
        {
          needed: resource.ownerAgency ? ['agency-operator', 'platform-admin'] : ['platform-admin'],
          scope: { agencyId: resource.ownerAgency ?? undefined },
        },
      );
    const [from, to]: [ApplicationStatus, ApplicationStatus] =
      decision === 'grant'
        ? ['pending', 'granted']
        : decision === 'refuse'
          ? ['pending', 'refused']
          : ['granted', 'revoked'];
    const after = await this.store.decideApplication({
      id,
      from,
      to,
      decidedBy: actorId(who),
      comment: comment ?? null,
    });
    if (after) return { before, after };
    const now = await this.store.application(id);
    throw decided('application', id, from, now?.status ?? before.status);
  }

  // ---- data delivery ----

  /**
   * Decides what the caller may read for `q`: the form, the devices and the metric or
   * label. Throws CS_ERR_DATA_NOT_GRANTED (403) when nothing entitles the caller.
   */
  async access(who: PersonPrincipal, q: DataRequest, dataType: ResourceDataType): Promise<DataAccess> {
    if (q.resource !== undefined) return this.#resourceAccess(who, q, dataType);
    if (q.device !== undefined) return this.#deviceAccess(who, q.device, q);
    throw new CitysenseError(
      'CS_ERR_CATALOGUE_QUERY',
      'name a resource (?resource=, see GET /v1/catalogue/resources) or a device (?device=<unified code>)',
      400,
    );
  }

  async #resourceAccess(
    who: PersonPrincipal,
    q: DataRequest,
    dataType: ResourceDataType,
  ): Promise<DataAccess> {
    const resource = await this.resource(q.resource ?? '');
    if (resource.dataType !== dataType)
      throw new CitysenseError(
        'CS_ERR_CATALOGUE_DATA_TYPE',
        `resource ${resource.id} holds ${resource.dataType}s: read it from GET /v1/catalogue/data/${resource.dataType}s`,
        400,
      );
    let basis: AccessBasis;
    let held: DataForm[];
    if (can(who, 'platform-admin')) [basis, held] = ['platform', [...DATA_FORMS]];
    else if (resource.ownerAgency !== null && can(who, 'agency-operator', { agencyId: resource.ownerAgency }))
      [basis, held] = ['owner', [...DATA_FORMS]];
    else {
      const granted =
        who.kind === 'user' && can(who, 'agency-operator', { agencyId: who.agencyId })
          ? await this.store.grantedForms(resource.id, who.agencyId)
          : [];
      // A form withdrawn from the catalogue stops being delivered, granted or not.
      [basis, held] = ['grant', granted.filter((f) => resource.forms.includes(f))];
    }
    const form = q.form ?? mostDetailed(held);
    if (form === undefined || !held.includes(form))
      throw notGranted(
        held.length === 0
          ? `${agencyLabel(who)} holds no grant for resource ${resource.id}: apply with POST /v1/catalogue/applications`
          : `${agencyLabel(who)} is granted resource ${resource.id} as ${held.join(', ')} only, not as ${form}`,
        { resource: resource.id, form: form ?? null, granted: held },
      );
    let devices = await this.#o.ledger.list({
      kind: resource.deviceKind,
      ownerAgency: resource.ownerAgency ?? undefined,
      limit: this.#o.maxDevices ?? 1000,
    });
    if (q.device !== undefined) {
      devices = devices.filter((d) => d.code === q.device);
      if (devices.length === 0)
        throw notFound('device', q.device, `it is not a device of resource ${resource.id}`);
    }
    return { form, basis, resource, devices, item: resource.item, rule: resource.rule };
  }

  async #deviceAccess(who: PersonPrincipal, code: string, q: DataRequest): Promise<DataAccess> {
    const device = await this.#o.ledger.device(code);
    let basis: AccessBasis | undefined;
    if (can(who, 'platform-admin')) basis = 'platform';
    else if (can(who, 'agency-operator', { agencyId: device.ownerAgency })) basis = 'owner';
    else if (
      who.kind === 'user' &&
      can(who, 'agency-operator', { agencyId: who.agencyId }) &&
      (await this.store.hasApprovedShare(code, who.agencyId))
    )
      basis = 'share';
    if (basis === undefined)
      throw notGranted(
        `${agencyLabel(who)} may not read device ${code} of ${device.ownerAgency}: apply for a share with POST /v1/catalogue/shares`,
        { device: code },
      );
    return {
      form: q.form ?? 'raw',
      basis,
      resource: null,
      devices: [device],
      item: q.item,
      rule: DEFAULT_RULE,
    };
  }

  /** Readings of the devices in the form `access` allows. */
  async readings(access: DataAccess, q: DataRequest): Promise<ReadingDelivery> {
    const byCode = new Map(access.devices.map((d) => [d.code, d]));
    const streams = await this.store.readingStreams([...byCode.keys()], access.item);
    const resource = access.resource?.id ?? null;
    const range = { from: q.from, to: q.to };
    if (access.form === 'raw') {
      const parts = await this.#each(streams, (s) =>
        this.#o.readings.queryReadings({
          node: s.node,
          device: s.device,
          metric: access.item,
          ...range,
          limit: q.limit,
        }),
      );
      const readings = parts
        .flat()
        .sort((a, b) => a.time.getTime() - b.time.getTime() || a.device.localeCompare(b.device))
        .slice(0, q.limit)
        .map((r: ReadingRow) => ({ ...r, time: r.time.toISOString() }));
      return {
        form: 'raw',
        resource,
        devices: this.#delivered(access, streamCodes(streams), 'raw'),
        readings,
      };
    }
    const bucket = coarserBucket(
      access.rule.bucket,
      q.bucket ?? (access.form === 'analysis' ? '1h' : access.rule.bucket),
    );
    const parts = await this.#each(streams, (s) =>
      this.#o.readings.queryReadings({
        node: s.node,
        device: s.device,
        metric: access.item,
        ...range,
        bucket,
        limit: q.limit,
      }),
    );
    const rows: ReadingBucketRow[] = parts.flat();
    if (access.form === 'desensitised') {
      const pseudonyms = this.#pseudonymiser();
      const readings = rows
        .sort((a, b) => a.bucket.getTime() - b.bucket.getTime())
        .slice(0, q.limit)
        .map((r) => ({
          bucket: r.bucket.toISOString(),
          device: pseudonyms.of(r.device),
          metric: r.metric,
          avg: r.avg,
          min: r.min,
          max: r.max,
          count: Number(r.count),
        }));
      return {
        form: 'desensitised',
        resource,
        bucket,
        devices: this.#delivered(access, streamCodes(streams), 'desensitised'),
        readings,
      };
    }
    const groups = new Map<
      string,
      { bucket: Date; metric: string; sum: number; valued: number; count: number; devices: Set<string> }
    >();
    for (const r of rows) {
      const key = `${r.bucket.getTime()}\u0000${r.metric}`;
      const g = groups.get(key) ?? {
        bucket: r.bucket,
        metric: r.metric,
        sum: 0,
        valued: 0,
        count: 0,
        devices: new Set(),
      };
      const n = Number(r.count);
      g.count += n;
      if (r.avg !== null) {
        g.sum += r.avg * n;
        g.valued += n;
      }
      g.devices.add(r.device);
      groups.set(key, g);
    }
    const aggregates = [...groups.values()]
      .sort((a, b) => a.bucket.getTime() - b.bucket.getTime() || a.metric.localeCompare(b.metric))
      .slice(0, q.limit)
      .map((g) => ({
        bucket: g.bucket.toISOString(),
        metric: g.metric,
        mean: g.valued > 0 ? g.sum / g.valued : null,
        count: g.count,
        devices: g.devices.size,
      }));
    return { form: 'analysis', resource, bucket, aggregates };
  }

  /** Detections of the devices in the form `access` allows. */
  async detections(access: DataAccess, q: DataRequest): Promise<DetectionDelivery> {
    const codes = access.devices.map((d) => d.code);
    const sources = await this.store.detectionSources(codes);
    const resource = access.resource?.id ?? null;
    const filter = { from: q.from, to: q.to, label: access.item, limit: q.limit };
    if (access.form === 'raw') {
      const parts = await this.#each(sources, (source) =>
        this.#o.analytics.queryDetections({ ...filter, source }),
      );
      const detections = parts
        .flat()
        .sort((a, b) => a.time.getTime() - b.time.getTime() || a.source.localeCompare(b.source))
        .slice(0, q.limit)
        .map((d) => ({ ...d, time: d.time.toISOString(), device: d.source }));
      return { form: 'raw', resource, devices: this.#delivered(access, new Set(sources), 'raw'), detections };
    }
    const bucket = coarserBucket(
      access.rule.bucket,
      q.bucket ?? (access.form === 'analysis' ? '1h' : access.rule.bucket),
    );
    const parts = await this.#each(sources, async (source) =>
      (await this.#o.analytics.countDetections({ ...filter, source, bucket })).map((c) => ({ ...c, source })),
    );
    const rows: Array<DetectionCountRow & { source: string }> = parts.flat();
    if (access.form === 'desensitised') {
      const pseudonyms = this.#pseudonymiser();
      const counts = rows
        .sort((a, b) => new Date(a.bucket).getTime() - new Date(b.bucket).getTime())
        .slice(0, q.limit)
        .map((c) => ({
          bucket: new Date(c.bucket).toISOString(),
          device: pseudonyms.of(c.source),
          label: c.label,
          objects: Number(c.objects),
          frames: Number(c.frames),
          peak: Number(c.peak),
        }));
      return {
        form: 'desensitised',
        resource,
        bucket,
        devices: this.#delivered(access, new Set(sources), 'desensitised'),
        counts,
      };
    }
    const groups = new Map<
      string,
      { bucket: Date; label: string; objects: number; frames: number; devices: Set<string> }
    >();
    for (const c of rows) {
      const at = new Date(c.bucket);
      const key = `${at.getTime()}\u0000${c.label}`;
      const g = groups.get(key) ?? { bucket: at, label: c.label, objects: 0, frames: 0, devices: new Set() };
      g.objects += Number(c.objects);
      g.frames += Number(c.frames);
      g.devices.add(c.source);
      groups.set(key, g);
    }
    const aggregates = [...groups.values()]
      .sort((a, b) => a.bucket.getTime() - b.bucket.getTime() || a.label.localeCompare(b.label))
      .slice(0, q.limit)
      .map((g) => ({
        bucket: g.bucket.toISOString(),
        label: g.label,
        objects: g.objects,
        frames: g.frames,
        devices: g.devices.size,
      }));
    return { form: 'analysis', resource, bucket, aggregates };
  }

  /** Devices that delivered data, exact (raw) or pseudonymous on the rule's grid. */
  #delivered(
    access: DataAccess,
    codes: ReadonlySet<string>,
    form: 'raw' | 'desensitised',
  ): DeliveredDevice[] {
    const pseudonyms = form === 'desensitised' ? this.#pseudonymiser() : undefined;
    return access.devices
      .filter((d) => codes.has(d.code))
      .map((d) =>
        pseudonyms
          ? {
              device: pseudonyms.of(d.code),
              kind: d.kind,
              longitude: coarsen(d.longitude, access.rule),
              latitude: coarsen(d.latitude, access.rule),
            }
          : { device: d.code, kind: d.kind, longitude: d.longitude, latitude: d.latitude },
      );
  }

  #pseudonymiser(): Pseudonymiser {
    if (!this.#pseudonyms) throw new Error('catalogue is not started');
    return this.#pseudonyms;
  }

  /** Runs `fn` over `items`, at most `concurrency` at a time, results in order. */
  async #each<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
    const results: R[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i] as T);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#o.concurrency ?? 8, items.length) }, worker));
    return results;
  }

  /** Runs an insert; a unique violation becomes 409 CS_ERR_CATALOGUE_DUPLICATE with `message`. */
  async #unique<T>(insert: () => Promise<T>, message: string): Promise<T> {
    try {
      return await insert();
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === '23505' || /duplicate key/.test(errorMessage(err))) {
        this.#log.debug({ err: errorMessage(err) }, 'duplicate refused');
        throw new CitysenseError('CS_ERR_CATALOGUE_DUPLICATE', message, 409);
      }
      throw err;
    }
  }
}

/** Validates a resource: its forms must be ones its grade may offer. */
function checkResource(input: ResourceInput): Omit<DataResource, 'createdAt' | 'updatedAt'> {
  const allowed = FORMS_BY_GRADE[input.grade];
  const refused = input.forms.filter((f) => !allowed.includes(f));
  if (refused.length > 0)
    throw new CitysenseError(
      'CS_ERR_CATALOGUE_FORM',
      `a grade ${input.grade} resource may be offered as ${allowed.join(', ')} only, not as ${refused.join(', ')}`,
      400,
      { allowed, refused },
    );
  return {
    id: input.id,
    title: input.title,
    deviceKind: input.deviceKind,
    dataType: input.dataType,
    item: input.item,
    ownerAgency: input.ownerAgency ?? null,
    grade: input.grade,
    category: input.category,
    forms: [...new Set(input.forms)],
    rule: { ...DEFAULT_RULE, ...input.rule },
    description: input.description ?? null,
  };
}

/** The agency that applies: the caller's own, or one the platform names. */
function applicantAgency(who: PersonPrincipal, named: string | undefined): string {
  const agency = named ?? (who.kind === 'user' ? who.agencyId : undefined);
  if (agency === undefined)
    throw new CitysenseError(
      'CS_ERR_CATALOGUE_AGENCY',
      'the admin token has no agency: name the applicant in `agency`',
      400,
    );
  if (!can(who, READER_ROLES, { agencyId: agency }))
    throw forbidden(`applying for ${agency} needs agency-operator of ${agency} or platform-admin`, {
      needed: [...READER_ROLES],
      scope: { agencyId: agency },
    });
  return agency;
}

/** The agency whose shares and applications a caller lists; null for the platform (every one). */
function scopeAgency(who: PersonPrincipal): string | null {
  if (can(who, 'platform-admin')) return null;
  return who.kind === 'user' ? who.agencyId : null;
}

function actorId(who: PersonPrincipal): string {
  return who.kind === 'user' ? who.username : 'admin';
}

function agencyLabel(who: PersonPrincipal): string {
  return who.kind === 'user' ? `agency ${who.agencyId}` : 'the caller';
}

function decided(what: string, id: string, expected: string, status: string): CitysenseError {
  return new CitysenseError(
    'CS_ERR_CATALOGUE_DECIDED',
    `${what} ${id} is ${status}, not ${expected}: it was decided already; read it again`,
    409,
    { status },
  );
}

function mostDetailed(forms: readonly DataForm[]): DataForm | undefined {
  return [...forms].sort((a, b) => FORM_DETAIL[b] - FORM_DETAIL[a])[0];
}

function coarserBucket(a: AggregateBucket, b: AggregateBucket): AggregateBucket {
  return BUCKET_SECONDS[a] >= BUCKET_SECONDS[b] ? a : b;
}

function streamCodes(streams: ReadonlyArray<{ device: string }>): Set<string> {
  return new Set(streams.map((s) => s.device));
}
