/** The online state of a node as a coloured pill. */
import { m } from './messages.ts';
import type { FleetNode } from './model.ts';

/** Status class of a node state (colours shared with the map). */
export function statusClass(status: string): 'ok' | 'warn' | 'bad' | 'unknown' {
  return status === 'online' ? 'ok' : status === 'offline' ? 'bad' : 'unknown';
}

/** A coloured status pill. */
export function StatusPill({ status }: { status: FleetNode['status'] }) {
  return (
    <span class={`status-pill pill-${statusClass(status)}`} data-status={status}>
      <span class={`swatch swatch-${statusClass(status)}`} aria-hidden="true" />
      {m(`status.${status}`)}
    </span>
  );
}
