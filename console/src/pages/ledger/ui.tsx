/**
 * Small pieces shared by the agency and review pages (ledger, reuse, carriers,
 * catalogue, review): a status pill, who is signed in, and the page's stylesheet.
 */
import { api } from '../../api.ts';
import { session } from '../../session.ts';
import '../../components/page.css';
import './work.css';

/** Status class of a state word, for colour: live is ok, waiting is warn, refused/broken is bad. */
export function toneOf(state: string): 'ok' | 'warn' | 'bad' | '' {
  if (['active', 'approved', 'granted', 'installed', 'ok', 'up', 'mounted'].includes(state)) return 'ok';
  if (['rejected', 'refused', 'revoked', 'fault', 'down', 'cancelled'].includes(state)) return 'bad';
  if (['retired', 'withdrawn', 'released'].includes(state)) return '';
  return 'warn';
}

/** A coloured state word. */
export function Pill({ state, label }: { state: string; label?: string }) {
  return (
    <span class={`pill ${toneOf(state)}`} data-state={state}>
      {label ?? state}
    </span>
  );
}

/** The signed-in user's agency (undefined for the admin token). */
export function myAgency(): string | undefined {
  const s = session.get();
  return s?.me.kind === 'user' ? s.me.user.agencyId : undefined;
}

/** Whether the signed-in person holds `role` (the admin token holds every role). */
export function holds(role: string): boolean {
  const s = session.get();
  if (!s) return false;
  if (s.me.kind === 'admin') return true;
  return s.me.user.roles.some((g) => g.role === role || g.role === 'platform-admin');
}

/** Device kinds of the ledger (cloud-hub/src/ledger/device-codes.ts). */
export const DEVICE_KINDS = [
  'camera',
  'air-quality',
  'noise',
  'water-level',
  'manhole',
  'lamp',
  'weather',
  'traffic-flow',
  'structural',
  'gateway',
  'other',
] as const;

/** The API client (re-exported so the pages import one place). */
export { api };
