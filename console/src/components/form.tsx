/**
 * Form pieces every role page uses: a labelled field, a select field with an "all"
 * choice, and the filter bar they sit in.
 */
import type { ComponentChildren } from 'preact';

/** A label above its control, with an optional hint below. */
export function Field({
  label,
  hint,
  class: cls,
  children,
}: {
  label: string;
  hint?: string | undefined;
  class?: string;
  children: ComponentChildren;
}) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control is the child.
    <label class={`field${cls ? ` ${cls}` : ''}`}>
      <span>{label}</span>
      {children}
      {hint ? <small>{hint}</small> : null}
    </label>
  );
}

/** Props of ChoiceField. */
export interface ChoiceFieldProps<T extends string> {
  label: string;
  name: string;
  value: string;
  onChange: (value: string) => void;
  choices: readonly T[];
  /** Text of the leading empty choice ("all" in a filter bar); none when absent. */
  all?: string;
  /** Text of a choice; the choice itself when absent. */
  labelOf?: (choice: T) => string;
}

/** A labelled select over `choices`, led by an empty "all" choice when `all` is given. */
export function ChoiceField<T extends string>(p: ChoiceFieldProps<T>) {
  return (
    <Field label={p.label}>
      <select name={p.name} value={p.value} onChange={(e) => p.onChange(e.currentTarget.value)}>
        {p.all === undefined ? null : <option value="">{p.all}</option>}
        {p.choices.map((c) => (
          <option key={c} value={c}>
            {p.labelOf ? p.labelOf(c) : c}
          </option>
        ))}
      </select>
    </Field>
  );
}

/** A filter bar: its fields, then the search button; `onSearch` applies the drafted filter. */
export function FilterBar({
  search,
  onSearch,
  children,
  after,
}: {
  /** The search button's text, also the form's label. */
  search: string;
  onSearch: () => void;
  children: ComponentChildren;
  /** Shown after the button (a result count). */
  after?: ComponentChildren;
}) {
  return (
    <form
      class="filters"
      aria-label={search}
      onSubmit={(e) => {
        e.preventDefault();
        onSearch();
      }}
    >
      {children}
      <button type="submit" class="btn btn-primary">
        {search}
      </button>
      {after}
    </form>
  );
}
