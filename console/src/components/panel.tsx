/** The panel every role page lays its parts in: a card with an optional h2 that labels it. */
import type { ComponentChildren, HTMLAttributes } from 'preact';

/** Props of Panel: any attribute of the element, plus its heading. */
export type PanelProps = Omit<HTMLAttributes<HTMLElement>, 'class' | 'title' | 'ref'> & {
  /** The h2; when `headingId` is given too, it labels the panel (aria-labelledby). */
  heading?: ComponentChildren;
  headingId?: string;
  /** `section` (default) or a plain `div`. */
  tag?: 'section' | 'div';
  children?: ComponentChildren;
};

/** A `.panel` section (or div), headed by an h2 when `heading` is given. */
export function Panel({ heading, headingId, tag: Tag = 'section', children, ...attrs }: PanelProps) {
  return (
    <Tag class="panel" {...(headingId ? { 'aria-labelledby': headingId } : {})} {...attrs}>
      {heading === undefined ? null : <h2 {...(headingId ? { id: headingId } : {})}>{heading}</h2>}
      {children}
    </Tag>
  );
}
