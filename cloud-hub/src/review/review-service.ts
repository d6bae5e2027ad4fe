/**
 * Joint review of front-end construction projects (联审, 001 Art. 45). A project lists
 * proposed ledger devices; the coordinator (big-data bureau) routes it to the review
 * categories it needs (video → police, urban operations → city management, hazard
 * monitoring → emergency management); each routed category is approved or rejected by
 * its reviewers; the project is approved when every category is, rejected when any is.
 * Device moves go through the ledger service, so each is filed in the chain; the ledger
 * refuses to activate a device of no approved project.
 */
import { randomUUID } from 'node:crypto';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { AuditActor } from '../audit/audit-log.ts';
import { REVIEW_CATEGORIES, type ReviewCategory } from '../auth/roles.ts';
import type { DeviceKind } from '../ledger/device-codes.ts';
import type { LedgerActor, LedgerService } from '../ledger/ledger-service.ts';
import type { DeviceState, LedgerDevice } from '../ledger/ledger-store.ts';
import { KIND_REVIEW_CATEGORY, LOW_GB35114_LEVELS } from './categories.ts';
import type {
  CategoryReview,
  CategorySource,
  Decision,
  InboxItem,
  ProjectFilter,
  ProjectState,
  ReviewHistoryEntry,
  ReviewProject,
  ReviewStore,
} from './review-store.ts';

/** Who acts: as the audit trail and history name them, and as the ledger chain records them. */
export interface ReviewCaller {
  person: AuditActor;
  ledger: LedgerActor;
}

/** What an applicant sends to create a project. */
export interface ProjectInput {
  name: string;
  agencyId: string;
  purpose: string;
  categories?: ReviewCategory[] | undefined;
  devices: Array<{ code: string; purpose?: string | undefined }>;
}

/** A device of a project as the reviewer sees it: the ledger's view plus what it is for. */
export interface ProjectDeviceView {
  code: string;
  purpose: string | null;
  kind: DeviceKind | null;
  state: DeviceState | null;
  ownerAgency: string | null;
  poleId: string | null;
  longitude: number | null;
  latitude: number | null;
  gb35114Level: string | null;
  /** Category its kind needs (`categories.ts`). */
  category: ReviewCategory | null;
}

/** Something the reviewer should look at twice. */
export interface ReviewFlag {
  device: string;
  code: 'GB35114_LEVEL_LOW';
  level: string;
  message: string;
}

/** A project with its devices, categories, flags and full history. */
export interface ProjectView extends ReviewProject {
  devices: ProjectDeviceView[];
  /** Categories the devices and the applicant ask for (before routing). */
  neededCategories: ReviewCategory[];
  /** Routed categories with their decisions. */
  categories: CategoryReview[];
  flags: ReviewFlag[];
  history: ReviewHistoryEntry[];
}

/** Options of the joint review. */
export interface ReviewServiceOptions {
  store: ReviewStore;
  ledger: LedgerService;
  logger?: Logger;
}

const ordered = (set: Iterable<ReviewCategory>): ReviewCategory[] => {
  const s = new Set(set);
  return REVIEW_CATEGORIES.filter((c) => s.has(c));
};

/** The joint review. */
export class ReviewService {
  readonly store: ReviewStore;
  readonly #ledger: LedgerService;
  readonly #log: Logger;

  constructor(options: ReviewServiceOptions) {
    this.store = options.store;
    this.#ledger = options.ledger;
    this.#log = componentLogger('review', options.logger);
  }

  /** Creates a draft project; every device must be a proposed device of the project's agency. */
  async create(input: ProjectInput, caller: ReviewCaller): Promise<ProjectView> {
    const codes = input.devices.map((d) => d.code);
    const twice = codes.filter((c, i) => codes.indexOf(c) !== i);
    if (twice.length > 0)
      throw new CitysenseError('CS_ERR_REVIEW_DEVICE', `devices listed twice: ${twice.join(', ')}`, 400, {
        problems: twice.map((code) => ({ code, message: 'listed twice' })),
      });
    const found = await Promise.all(codes.map((c) => this.#ledger.store.device(c)));
    const problems = codes.flatMap((code, i) => {
      const d = found[i];
      if (!d) return [{ code, message: 'not in the ledger: register it first (POST /v1/ledger/devices)' }];
      if (d.ownerAgency !== input.agencyId)
        return [{ code, message: `belongs to agency ${d.ownerAgency}, not to ${input.agencyId}` }];
      if (d.state !== 'proposed')
        return [{ code, message: `is ${d.state}: a project lists proposed devices` }];
      return [];
    });
    if (problems.length > 0)
      throw new CitysenseError(
        'CS_ERR_REVIEW_DEVICE',
        `the project cannot list these devices: ${problems.map((p) => `${p.code} ${p.message}`).join('; ')}`,
        400,
        { problems },
      );
    const now = new Date().toISOString();
    const project: ReviewProject = {
      id: `rp-${randomUUID()}`,
      name: input.name,
      agencyId: input.agencyId,
      purpose: input.purpose,
      requestedCategories: ordered(input.categories ?? []),
      state: 'draft',
      createdBy: caller.person.username ?? caller.person.id ?? caller.person.kind,
      createdAt: now,
      updatedAt: now,
      decidedAt: null,
    };
    await this.store.insertProject(
      project,
      input.devices.map((d) => ({ code: d.code, purpose: d.purpose ?? null })),
    );
    await this.store.addHistory(project.id, caller.person, 'created', { detail: { devices: codes } });
    return this.view(project.id);
  }

  /** One project; throws CS_ERR_REVIEW_UNKNOWN (404). */
  async project(id: string): Promise<ReviewProject> {
    const p = await this.store.project(id);
    if (!p) throw new CitysenseError('CS_ERR_REVIEW_UNKNOWN', `review project ${id} does not exist`, 404);
    return p;
  }

  /** The whole project: devices as the ledger has them now, routed categories, flags, history. */
  async view(id: string): Promise<ProjectView> {
    const project = await this.project(id);
    const [listed, categories, history] = await Promise.all([
      this.store.devices(id),
      this.store.categories(id),
      this.store.history(id),
    ]);
    const ledger = await Promise.all(listed.map((d) => this.#ledger.store.device(d.code)));
    const devices = listed.map((d, i) => deviceView(d.code, d.purpose, ledger[i]));
    const flags = devices.flatMap((d): ReviewFlag[] =>
      d.kind === 'camera' && LOW_GB35114_LEVELS.has(d.gb35114Level)
        ? [
            {
              device: d.code,
              code: 'GB35114_LEVEL_LOW',
              level: d.gb35114Level ?? 'unknown',
              message:
                `camera ${d.code} is GB 35114 level ${d.gb35114Level ?? 'unknown'}: ` +
                'level B or C (device authentication, signed or encrypted video) is preferred',
            },
          ]
        : [],
    );
    return {
      ...project,
      devices,
      neededCategories: this.#needed(project, devices),
      categories,
      flags,
      history,
    };
  }

  /** Categories the devices' kinds and the applicant ask for. */
  #needed(project: ReviewProject, devices: ProjectDeviceView[]): ReviewCategory[] {
    return ordered([
      ...devices.flatMap((d) => (d.category ? [d.category] : [])),
      ...project.requestedCategories,
    ]);
  }

  /**
   * Submits a draft: its devices go proposed → in-review in the ledger. When one cannot
   * (it moved meanwhile, a duplicate flag is unanswered) the moved ones go back, the
   * project stays a draft and the ledger's error is thrown.
   */
  async submit(id: string, caller: ReviewCaller): Promise<ProjectView> {
    await this.#claim(id, 'draft', 'submitted');
    const devices = await this.store.devices(id);
    const moved: string[] = [];
    try {
      for (const d of devices) {
        await this.#ledger.transition(d.code, 'in-review', caller.ledger, {
          from: 'proposed',
          note: `joint review ${id} submitted`,
        });
        moved.push(d.code);
      }
    } catch (err) {
      await this.#moveDevices(id, moved, 'proposed', caller, `joint review ${id}: submission undone`);
      await this.store.moveProject(id, 'submitted', 'draft');
      throw err;
    }
    await this.store.addHistory(id, caller.person, 'submitted');
    return this.view(id);
  }

  /**
   * Routes a submitted project (coordinator): the categories its devices need, those the
   * applicant asked for, and `add`. A project that needs none is refused.
   */
  async route(
    id: string,
    add: ReviewCategory[],
    comment: string | undefined,
    caller: ReviewCaller,
  ): Promise<ProjectView> {
    const before = await this.view(id);
    if (before.state !== 'submitted') throw stateError(before, 'route', 'submitted');
    const sources = new Map<ReviewCategory, CategorySource>();
    for (const c of add) sources.set(c, 'coordinator');
    for (const c of before.requestedCategories) sources.set(c, 'applicant');
    for (const d of before.devices) if (d.category) sources.set(d.category, 'devices');
    const categories = ordered(sources.keys()).map((category) => ({
      category,
      source: sources.get(category) ?? 'coordinator',
    }));
    if (categories.length === 0)
      throw new CitysenseError(
        'CS_ERR_REVIEW_NO_CATEGORY',
        `no device of project ${id} maps to a review category: name one with {"add": ["video" | "urban-operations" | "hazard-monitoring"]}`,
        400,
      );
    if (!(await this.store.route(id, categories)))
      throw stateError(await this.project(id), 'route', 'submitted');
    await this.store.addHistory(id, caller.person, 'routed', {
      comment,
      detail: { categories: categories.map((c) => c.category) },
    });
    return this.view(id);
  }

  /**
   * Records a reviewer's decision on one routed category. Of concurrent decisions on the
   * same category exactly one is recorded (the others get CS_ERR_REVIEW_DECIDED, 409);
   * the decision that completes the project moves its devices in the ledger.
   */
  async decide(
    id: string,
    category: ReviewCategory,
    decision: Decision,
    comment: string | undefined,
    caller: ReviewCaller,
  ): Promise<ProjectView> {
    if (!(await this.store.decide(id, category, decision, caller.person, comment))) {
      const project = await this.project(id);
      const routed = (await this.store.categories(id)).find((c) => c.category === category);
      if (!routed)
        throw new CitysenseError(
          'CS_ERR_REVIEW_NOT_ROUTED',
          `project ${id} is not routed to ${category} review`,
          409,
          { state: project.state },
        );
      if (routed.state !== 'pending')
        throw new CitysenseError(
          'CS_ERR_REVIEW_DECIDED',
          `the ${category} review of project ${id} is already ${routed.state} by ${routed.decidedBy?.username ?? 'someone'}`,
          409,
          { category, state: routed.state, decidedBy: routed.decidedBy, decidedAt: routed.decidedAt },
        );
      throw stateError(project, 'decide on', 'in-review');
    }
    await this.store.addHistory(id, caller.person, 'decided', { category, decision, comment });
    const concluded =
      decision === 'rejected' ? await this.store.concludeRejected(id) : await this.store.concludeApproved(id);
    if (concluded) {
      const to: DeviceState = decision === 'approved' ? 'approved' : 'proposed';
      const codes = (await this.store.devices(id)).map((d) => d.code);
      await this.store.addHistory(id, caller.person, decision, { category });
      await this.#moveDevices(id, codes, to, caller, `joint review ${id} ${decision}`);
    }
    return this.view(id);
  }

  /** Projects by filter. */
  list(filter: ProjectFilter): Promise<ReviewProject[]> {
    return this.store.list(filter);
  }

  /** Pending categories for reviewers of `categories` (null: all). */
  inbox(categories: ReviewCategory[] | null, limit: number): Promise<InboxItem[]> {
    return this.store.inbox(categories, limit);
  }

  /** Moves a project `from` → `to` or throws CS_ERR_REVIEW_STATE / _UNKNOWN. */
  async #claim(id: string, from: ProjectState, to: ProjectState): Promise<void> {
    if (await this.store.moveProject(id, from, to)) return;
    throw stateError(await this.project(id), to === 'submitted' ? 'submit' : to, from);
  }

  /** Moves devices in the ledger from in-review; a device that cannot move is noted in the history, not thrown. */
  async #moveDevices(
    id: string,
    codes: string[],
    to: DeviceState,
    caller: ReviewCaller,
    note: string,
  ): Promise<void> {
    for (const code of codes) {
      try {
        await this.#ledger.transition(code, to, caller.ledger, { from: 'in-review', note });
      } catch (err) {
        this.#log.warn(
          { project: id, device: code, to, err: errorMessage(err) },
          'review could not move device',
        );
        await this.store.addHistory(id, caller.person, 'device-move-failed', {
          detail: { device: code, to, error: errorMessage(err) },
        });
      }
    }
  }
}

function deviceView(code: string, purpose: string | null, d: LedgerDevice | undefined): ProjectDeviceView {
  return {
    code,
    purpose,
    kind: d?.kind ?? null,
    state: d?.state ?? null,
    ownerAgency: d?.ownerAgency ?? null,
    poleId: d?.poleId ?? null,
    longitude: d?.longitude ?? null,
    latitude: d?.latitude ?? null,
    gb35114Level: d?.gb35114Level ?? null,
    category: d ? KIND_REVIEW_CATEGORY[d.kind] : null,
  };
}

function stateError(project: ReviewProject, what: string, needed: ProjectState): CitysenseError {
  return new CitysenseError(
    'CS_ERR_REVIEW_STATE',
    `cannot ${what} project ${project.id}: it is ${project.state}, it must be ${needed}`,
    409,
    { state: project.state, needed },
  );
}
