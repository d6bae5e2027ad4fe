/**
 * Deciding applications (mount applications, data access, device shares): one comment
 * field above the table, approve / refuse / revoke buttons in the row, the decision time
 * and comment in a column.
 */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { formatTime } from '../i18n.ts';
import { type Action, useAction } from './action.ts';
import type { Column } from './data-table.tsx';
import { Field } from './form.tsx';
import { ErrorPanel } from './states.tsx';

/** The decision desk of one list: its action state and the comment the next decision carries. */
export interface DecisionDesk {
  action: Action;
  comment: string;
  setComment(comment: string): void;
  /** POSTs `{ decision, comment? }` to `url`; clears the comment and calls `onDecided` when it succeeds. */
  decide(url: string, decision: string): Promise<void>;
}

/** Decisions with an optional shared comment; `onDecided` reloads the list. */
export function useDecisionDesk(onDecided: () => void): DecisionDesk {
  const action = useAction();
  const [comment, setComment] = useState('');
  const decide = async (url: string, decision: string) => {
    const note = comment.trim();
    const ok = await action.run(() =>
      api.request('POST', url, { body: { decision, ...(note ? { comment: note } : {}) } }),
    );
    if (ok) {
      setComment('');
      onDecided();
    }
  };
  return { action, comment, setComment, decide };
}

/** The comment field of a decision desk, and the last decision's error. */
export function DecisionComment({ label, desk }: { label: string; desk: DecisionDesk }) {
  return (
    <>
      <div class="filters" style={{ marginBottom: '0.5rem' }}>
        <Field label={label}>
          <input
            name="comment"
            size={40}
            value={desk.comment}
            onInput={(e) => desk.setComment(e.currentTarget.value)}
          />
        </Field>
      </div>
      {desk.action.error ? <ErrorPanel error={desk.action.error} compact /> : null}
    </>
  );
}

/** One decision a row offers: the word sent to the hub (also `data-do`) and its button text. */
export interface DecisionChoice {
  decision: string;
  label: string;
}

/**
 * The decision buttons of one row: the first is the primary one; several sit in a row,
 * a single one (revoke) stands alone. Nothing when the row offers none.
 */
export function DecisionActions({
  choices,
  busy,
  onDecide,
}: {
  choices: DecisionChoice[];
  busy: boolean;
  onDecide: (decision: string) => void;
}) {
  const buttons = choices.map((c, i) => (
    <button
      key={c.decision}
      type="button"
      class={i === 0 && choices.length > 1 ? 'btn btn-primary' : 'btn'}
      data-do={c.decision}
      disabled={busy}
      onClick={() => onDecide(c.decision)}
    >
      {c.label}
    </button>
  ));
  if (buttons.length === 0) return null;
  if (buttons.length === 1) return buttons[0] ?? null;
  return (
    <span class="actions" style={{ marginTop: 0 }}>
      {buttons}
    </span>
  );
}

/** "time · comment" of a decided application, "—" while it is undecided. */
export function decisionNote(decidedAt: string | null, comment: string | null): string {
  return decidedAt ? `${formatTime(decidedAt)}${comment ? ` · ${comment}` : ''}` : '—';
}

/** A row that has been, or may be, decided. */
export interface Decidable {
  decidedAt: string | null;
  comment: string | null;
}

/**
 * The columns an application list ends with: when and how it was decided, then the
 * decision buttons (left out when the list offers none).
 */
export function decisionColumns<T extends Decidable>(
  headers: { decision: string; actions: string },
  actions?: (row: T) => ComponentChildren,
): Column<T>[] {
  return [
    { id: 'decision', header: headers.decision, cell: (a) => decisionNote(a.decidedAt, a.comment) },
    ...(actions ? [{ id: 'actions', header: headers.actions, cell: actions }] : []),
  ];
}
