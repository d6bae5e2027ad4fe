/**
 * Every page of the console and who may open it. Navigation shows a page only to
 * users holding one of its roles (the admin token and platform admins see all);
 * the hub still checks every call. A page without `load` shows the designed
 * "coming in this release" placeholder. To build a page: add `pages/<id>/index.tsx`
 * exporting `default` and point `load` at it.
 */
import type { ComponentType } from 'preact';
import type { Me, Role } from './api.ts';
import type { MessageKey } from './i18n.ts';

/** Navigation groups, in display order. */
export type NavGroup = 'everyone' | 'field' | 'agency' | 'review' | 'algorithms' | 'ops';

/** One page of the console. */
export interface PageDef {
  id: string;
  title: MessageKey;
  group: NavGroup;
  /** Roles that see the page; undefined = every signed-in user. */
  roles?: readonly Role[];
  /** Short glyph for the navigation (decorative). */
  icon: string;
  /** OpenAPI tag of the API behind it, linked from the placeholder. */
  apiTag?: string;
  /** Loads the page component (code-split); undefined = coming in this release. */
  load?: () => Promise<{ default: ComponentType }>;
}

/** Every page, in navigation order. */
export const PAGES: readonly PageDef[] = [
  { id: 'map', title: 'nav.map', group: 'everyone', icon: '◎', load: () => import('./pages/map/index.tsx') },
  {
    id: 'fleet',
    title: 'nav.fleet',
    group: 'field',
    icon: '▣',
    roles: ['field-engineer'],
    apiTag: 'registry',
    load: () => import('./pages/fleet/index.tsx'),
  },
  {
    id: 'ledger',
    title: 'nav.ledger',
    group: 'agency',
    icon: '☰',
    roles: ['agency-operator'],
    apiTag: 'sensor ledger',
    load: () => import('./pages/ledger/index.tsx'),
  },
  {
    id: 'reuse',
    title: 'nav.reuse',
    group: 'agency',
    icon: '⇄',
    roles: ['agency-operator'],
    apiTag: 'data catalogue',
    load: () => import('./pages/reuse/index.tsx'),
  },
  {
    id: 'carriers',
    title: 'nav.carriers',
    group: 'agency',
    icon: '┃',
    roles: ['agency-operator'],
    apiTag: 'carriers',
    load: () => import('./pages/carriers/index.tsx'),
  },
  {
    id: 'catalogue',
    title: 'nav.catalogue',
    group: 'agency',
    icon: '▤',
    roles: ['agency-operator'],
    apiTag: 'data catalogue',
    load: () => import('./pages/catalogue/index.tsx'),
  },
  {
    id: 'review',
    title: 'nav.review',
    group: 'review',
    icon: '✓',
    roles: ['reviewer'],
    apiTag: 'review',
    load: () => import('./pages/review/index.tsx'),
  },
  {
    id: 'algorithms',
    title: 'nav.algorithms',
    group: 'algorithms',
    icon: '◈',
    roles: ['algorithm-admin'],
    apiTag: 'algorithms',
    load: () => import('./pages/algorithms/index.tsx'),
  },
  {
    id: 'deployments',
    title: 'nav.deployments',
    group: 'algorithms',
    icon: '⇪',
    roles: ['algorithm-admin'],
    apiTag: 'deployments',
    load: () => import('./pages/deployments/index.tsx'),
  },
  {
    id: 'video',
    title: 'nav.video',
    group: 'ops',
    icon: '▶',
    roles: ['field-engineer'],
    apiTag: 'video',
    load: () => import('./pages/video/index.tsx'),
  },
  {
    id: 'operations',
    title: 'nav.operations',
    group: 'ops',
    icon: '⚙',
    roles: ['field-engineer', 'agency-operator'],
    apiTag: 'alarms',
    load: () => import('./pages/operations/index.tsx'),
  },
];

/** Whether `me` may open `page` (platform-admin and the admin token: every page). */
export function mayOpen(me: Me, page: PageDef): boolean {
  if (!page.roles) return true;
  if (me.kind === 'admin') return true;
  const held = new Set(me.user.roles.map((g) => g.role));
  return held.has('platform-admin') || page.roles.some((r) => held.has(r));
}

/** Pages `me` may open. */
export function visiblePages(me: Me): PageDef[] {
  return PAGES.filter((p) => mayOpen(me, p));
}
