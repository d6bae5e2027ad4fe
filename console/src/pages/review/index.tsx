/**
 * Joint review for officials: the inbox of their category, a project's proposed devices on
 * a small map beside the standing devices within the duplicate radius, low GB 35114 levels
 * flagged, approve or reject with a comment, and the project's full history.
 */
import { useMemo, useState } from 'preact/hooks';
import { api } from '../../api.ts';
import { useAction } from '../../components/action.ts';
import { type Column, ResourceTable } from '../../components/data-table.tsx';
import { Field } from '../../components/form.tsx';
import { PageHead } from '../../components/page-head.tsx';
import { Panel } from '../../components/panel.tsx';
import { ErrorPanel, Loading } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatNumber, formatTime } from '../../i18n.ts';
import { href, navigate, useRoute } from '../../router.ts';
import { session } from '../../session.ts';
import { CodeParts } from '../ledger/code-parts.tsx';
import type { NearbyDevice } from '../ledger/index.tsx';
import { stateLabel } from '../ledger/messages.ts';
import { Pill } from '../ledger/ui.tsx';
import { ledgerStatus } from '../map/layers.ts';
import type { MapPoint } from '../map/model.ts';
import { m, word } from './messages.ts';
import { MiniMap } from './mini-map.tsx';

interface Project {
  id: string;
  name: string;
  agencyId: string;
  purpose: string;
  requestedCategories: string[];
  state: string;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  decidedAt: string | null;
}

interface ProjectDevice {
  code: string;
  purpose: string | null;
  kind: string | null;
  state: string | null;
  ownerAgency: string | null;
  poleId: string | null;
  longitude: number | null;
  latitude: number | null;
  gb35114Level: string | null;
  category: string | null;
}

interface ProjectView extends Project {
  devices: ProjectDevice[];
  neededCategories: string[];
  categories: Array<{
    category: string;
    source: string;
    state: string;
    routedAt: string;
    decidedBy: { id: string | null; username: string | null } | null;
    decidedAt: string | null;
    comment: string | null;
  }>;
  flags: Array<{ device: string; code: string; level: string; message: string }>;
  history: Array<{
    id: number;
    at: string;
    actor: { kind: string; id: string | null; username: string | null; agencyId: string | null };
    action: string;
    category: string | null;
    decision: string | null;
    comment: string | null;
  }>;
}

interface InboxItem {
  project: Project;
  category: string;
  routedAt: string;
}

/** Categories the signed-in person reviews; null = every one (admin token, platform admin). */
function myCategories(): Set<string> | null {
  const s = session.get();
  if (!s || s.me.kind === 'admin') return null;
  if (s.me.user.roles.some((g) => g.role === 'platform-admin')) return null;
  return new Set(s.me.user.roles.flatMap((g) => (g.role === 'reviewer' && g.category ? [g.category] : [])));
}

/** The review page (`#/review`, `#/review/all`, `#/review/<project id>`). */
export default function ReviewPage() {
  const route = useRoute();
  const sub = route.rest[0] ?? '';
  return (
    <div class="work">
      <PageHead title={m('title')} />
      <nav class="work-tabs" aria-label={m('title')}>
        <a href={href('review')} aria-current={sub === '' ? 'page' : undefined}>
          {m('tab.inbox')}
        </a>
        <a href="#/review/all" aria-current={sub === 'all' ? 'page' : undefined}>
          {m('tab.all')}
        </a>
      </nav>
      {sub === '' ? <Inbox /> : sub === 'all' ? <AllProjects /> : <ProjectDetail id={sub} />}
    </div>
  );
}

function Inbox() {
  const inbox = useResource(() => api.get<InboxItem[]>('/v1/review/inbox'), []);
  const columns = useMemo<Column<InboxItem>[]>(
    () => [
      {
        id: 'name',
        header: m('col.project'),
        cell: (i) => <a href={`#/review/${encodeURIComponent(i.project.id)}`}>{i.project.name}</a>,
        sort: (i) => i.project.name,
      },
      {
        id: 'agency',
        header: m('col.agency'),
        cell: (i) => i.project.agencyId,
        sort: (i) => i.project.agencyId,
      },
      {
        id: 'category',
        header: m('col.category'),
        cell: (i) => word('cat', i.category),
        sort: (i) => i.category,
      },
      {
        id: 'routed',
        header: m('col.routedAt'),
        cell: (i) => formatTime(i.routedAt),
        sort: (i) => i.routedAt,
      },
      {
        id: 'state',
        header: m('col.state'),
        cell: (i) => <Pill state={i.project.state} label={word('state', i.project.state)} />,
      },
    ],
    [],
  );
  return (
    <Panel aria-label={m('tab.inbox')}>
      <ResourceTable
        caption={m('tab.inbox')}
        columns={columns}
        resource={inbox}
        rowKey={(i) => `${i.project.id}:${i.category}`}
        onRowClick={(i) => navigate(`review/${encodeURIComponent(i.project.id)}`)}
        empty={m('inbox.empty')}
      />
    </Panel>
  );
}

function AllProjects() {
  const list = useResource(() => api.get<Project[]>('/v1/review/projects', { limit: 200 }), []);
  const columns = useMemo<Column<Project>[]>(
    () => [
      {
        id: 'name',
        header: m('col.project'),
        cell: (p) => <a href={`#/review/${encodeURIComponent(p.id)}`}>{p.name}</a>,
        sort: (p) => p.name,
      },
      { id: 'agency', header: m('col.agency'), cell: (p) => p.agencyId, sort: (p) => p.agencyId },
      {
        id: 'state',
        header: m('col.state'),
        cell: (p) => <Pill state={p.state} label={word('state', p.state)} />,
        sort: (p) => p.state,
      },
      {
        id: 'updated',
        header: m('col.updated'),
        cell: (p) => formatTime(p.updatedAt),
        sort: (p) => p.updatedAt,
      },
    ],
    [],
  );
  return (
    <Panel aria-label={m('tab.all')}>
      <ResourceTable
        caption={m('tab.all')}
        columns={columns}
        resource={list}
        rowKey={(p) => p.id}
        onRowClick={(p) => navigate(`review/${encodeURIComponent(p.id)}`)}
        empty={m('all.empty')}
      />
    </Panel>
  );
}

interface Loaded {
  view: ProjectView;
  nearby: Map<string, NearbyDevice[]>;
  /** Duplicate radius of each proposed device's kind, metres. */
  radius: Map<string, number>;
}

async function loadProject(id: string): Promise<Loaded> {
  const view = await api.get<ProjectView>(`/v1/review/projects/${encodeURIComponent(id)}`);
  const nearby = new Map<string, NearbyDevice[]>();
  const radius = new Map<string, number>();
  // The duplicate look-up per proposed device (a reviewer reads the ledger city-wide).
  await Promise.all(
    view.devices.slice(0, 100).map(async (d) => {
      const dup = await api.get<{ duplicates: NearbyDevice[]; radiusM: number }>(
        `/v1/ledger/devices/${d.code}/duplicates`,
      );
      nearby.set(d.code, dup.duplicates);
      radius.set(d.code, dup.radiusM);
    }),
  );
  return { view, nearby, radius };
}

function pointsOf({ view, nearby }: Loaded): MapPoint[] {
  const points = new Map<string, MapPoint>();
  for (const list of nearby.values())
    for (const n of list)
      points.set(n.code, {
        key: `ledger:${n.code}`,
        id: n.code,
        kind: n.kind === 'camera' ? 'camera' : 'sensor',
        status: ledgerStatus(n.state),
        state: n.state,
        lon: n.longitude,
        lat: n.latitude,
        agency: n.ownerAgency,
        label: n.kind,
        source: '/v1/ledger/devices',
        facts: [],
      });
  for (const d of view.devices) {
    if (d.longitude === null || d.latitude === null) continue;
    points.set(d.code, {
      key: `ledger:${d.code}`,
      id: d.code,
      kind: d.kind === 'camera' ? 'camera' : 'sensor',
      // Proposed devices stand out (amber) whatever step of the review they are at.
      status: d.state === 'active' ? 'ok' : 'warn',
      state: d.state ?? 'proposed',
      lon: d.longitude,
      lat: d.latitude,
      agency: d.ownerAgency,
      label: d.kind ?? '',
      source: '/v1/review/projects',
      facts: [],
    });
  }
  return [...points.values()];
}

function ProjectDetail({ id }: { id: string }) {
  const project = useResource(() => loadProject(id), [id]);
  const points = useMemo(() => (project.data ? pointsOf(project.data) : []), [project.data]);
  const rings = useMemo(
    () =>
      (project.data?.view.devices ?? []).flatMap((d) => {
        const radiusM = project.data?.radius.get(d.code) ?? 0;
        return d.longitude !== null && d.latitude !== null && radiusM > 0
          ? [{ lon: d.longitude, lat: d.latitude, radiusM }]
          : [];
      }),
    [project.data],
  );
  if (project.error) return <ErrorPanel error={project.error} onRetry={project.reload} />;
  if (!project.data) return <Loading />;
  const { view, nearby } = project.data;
  const flagged = new Map(view.flags.map((f) => [f.device, f]));
  const mine = myCategories();
  const decidable = view.categories.filter(
    (c) => c.state === 'pending' && (mine === null || mine.has(c.category)),
  );
  return (
    <>
      <p>
        <a href={href('review')}>← {m('detail.back')}</a>
      </p>
      <section class="panel" aria-labelledby="project-title" data-testid="project" data-state={view.state}>
        <h2 id="project-title">
          {view.name} <Pill state={view.state} label={word('state', view.state)} />
        </h2>
        <dl class="facts">
          <dt>{m('detail.purpose')}</dt>
          <dd>{view.purpose}</dd>
          <dt>{m('detail.agency')}</dt>
          <dd>{view.agencyId}</dd>
          <dt>{m('detail.created')}</dt>
          <dd>{formatTime(view.createdAt)}</dd>
          {view.decidedAt ? (
            <>
              <dt>{m('detail.decided')}</dt>
              <dd>{formatTime(view.decidedAt)}</dd>
            </>
          ) : null}
        </dl>
      </section>
      {view.flags.length ? (
        <section class="warning" data-testid="review-flags" role="note">
          <h3>⚠ {m('detail.flags')}</h3>
          <ul>
            {view.flags.map((f) => (
              <li key={`${f.device}:${f.code}`}>
                <strong>{m('detail.lowLevel')}</strong> <code>{f.device}</code> ({f.level}): {f.message}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <div class="two-col">
        <Panel heading={m('detail.map')} headingId="map-title">
          <MiniMap
            points={points}
            rings={rings}
            focus={view.devices[0] ? `ledger:${view.devices[0].code}` : undefined}
          />
        </Panel>
        <Decisions view={view} decidable={decidable} onDecided={project.reload} />
      </div>
      <Panel heading={m('detail.devices')} headingId="devices-title">
        <div class="table-wrap">
          <table class="data-table" data-testid="project-devices">
            <thead>
              <tr>
                <th scope="col">{m('col.code')}</th>
                <th scope="col">{m('col.kind')}</th>
                <th scope="col">{m('col.state')}</th>
                <th scope="col">{m('col.gb35114')}</th>
                <th scope="col">{m('col.pole')}</th>
                <th scope="col">{m('col.position')}</th>
                <th scope="col">{m('col.nearby')}</th>
              </tr>
            </thead>
            <tbody>
              {view.devices.map((d) => {
                const near = nearby.get(d.code) ?? [];
                const flag = flagged.get(d.code);
                return (
                  <tr key={d.code}>
                    <td>
                      <CodeParts code={d.code} />
                    </td>
                    <td>{d.kind ?? '—'}</td>
                    <td>{d.state ? <Pill state={d.state} label={stateLabel(d.state)} /> : '—'}</td>
                    <td>
                      {flag ? (
                        <span class="pill bad" data-flag={flag.code} title={flag.message}>
                          ⚠ {d.gb35114Level ?? 'none'}
                        </span>
                      ) : (
                        (d.gb35114Level ?? '—')
                      )}
                    </td>
                    <td>{d.poleId ?? '—'}</td>
                    <td class="mono">
                      {d.longitude !== null && d.latitude !== null
                        ? `${d.longitude.toFixed(6)}, ${d.latitude.toFixed(6)}`
                        : '—'}
                    </td>
                    <td data-testid="nearby-count" data-count={near.length}>
                      {near.length
                        ? m('detail.nearbyN', {
                            n: near.length,
                            m: formatNumber(Math.min(...near.map((n) => n.distanceM)), 1),
                          })
                        : m('detail.nearbyNone')}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </Panel>
      <Panel heading={m('detail.history')} headingId="history-title">
        {view.history.length === 0 ? (
          <p class="muted">{m('detail.noHistory')}</p>
        ) : (
          <ol class="history" data-testid="review-history">
            {view.history.map((h) => (
              <li key={h.id} data-action={h.action}>
                <time dateTime={h.at}>{formatTime(h.at)}</time>
                <strong>{word('action', h.action)}</strong>
                {h.category ? ` · ${word('cat', h.category)}` : ''}
                {h.decision ? (
                  <>
                    {' '}
                    <Pill state={h.decision} label={word('cat', h.decision)} />
                  </>
                ) : null}
                <div class="muted">
                  {h.actor.username ?? h.actor.id ?? h.actor.kind}
                  {h.actor.agencyId ? ` (${h.actor.agencyId})` : ''}
                  {h.comment ? ` · “${h.comment}”` : ''}
                </div>
              </li>
            ))}
          </ol>
        )}
      </Panel>
    </>
  );
}

function Decisions({
  view,
  decidable,
  onDecided,
}: {
  view: ProjectView;
  decidable: ProjectView['categories'];
  onDecided: () => void;
}) {
  const action = useAction();
  const [comment, setComment] = useState('');
  const [done, setDone] = useState(false);
  const decide = async (category: string, decision: 'approve' | 'reject') => {
    const ok = await action.run(() =>
      api.request<ProjectView>('POST', `/v1/review/projects/${encodeURIComponent(view.id)}/decisions`, {
        body: { category, decision, ...(comment.trim() ? { comment: comment.trim() } : {}) },
      }),
    );
    if (ok) {
      setDone(true);
      setComment('');
      onDecided();
    }
  };
  return (
    <Panel heading={m('detail.categories')} headingId="decide-title">
      <ul class="history" data-testid="review-categories">
        {view.categories.map((c) => (
          <li key={c.category} data-category={c.category} data-state={c.state}>
            <strong>{word('cat', c.category)}</strong> <Pill state={c.state} label={word('cat', c.state)} />
            {c.decidedAt ? (
              <div class="muted">
                {m('cat.by', {
                  who: c.decidedBy?.username ?? c.decidedBy?.id ?? '—',
                  time: formatTime(c.decidedAt),
                })}
                {c.comment ? ` · “${c.comment}”` : ''}
              </div>
            ) : null}
          </li>
        ))}
      </ul>
      {done ? (
        <p class="success" role="status" data-testid="decided">
          ✓ {m('decide.done')}
        </p>
      ) : null}
      {decidable.map((c) => (
        <form
          key={c.category}
          class="work"
          style={{ padding: 0, gap: '0.5rem' }}
          onSubmit={(e) => e.preventDefault()}
          data-testid="decide-form"
        >
          <h3 style={{ margin: '0.5rem 0 0' }}>{m('decide.title', { category: word('cat', c.category) })}</h3>
          <Field label={m('decide.comment')} hint={m('decide.commentHint')}>
            <textarea
              name="comment"
              rows={3}
              maxLength={4000}
              value={comment}
              onInput={(e) => setComment(e.currentTarget.value)}
            />
          </Field>
          <div class="actions" style={{ marginTop: 0 }}>
            <button
              type="button"
              class="btn btn-primary"
              data-decision="approve"
              disabled={action.busy}
              onClick={() => decide(c.category, 'approve')}
            >
              ✓ {m('decide.approve')}
            </button>
            <button
              type="button"
              class="btn"
              data-decision="reject"
              disabled={action.busy}
              onClick={() => decide(c.category, 'reject')}
            >
              ✕ {m('decide.reject')}
            </button>
          </div>
        </form>
      ))}
      {decidable.length === 0 && view.categories.some((c) => c.state === 'pending') ? (
        <p class="muted">{m('decide.notYours')}</p>
      ) : null}
      {action.error ? <ErrorPanel error={action.error} compact /> : null}
    </Panel>
  );
}
