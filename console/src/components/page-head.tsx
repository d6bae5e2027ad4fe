/** The heads of role pages: a work page's title and intro, an admin page's title, subtitle and actions. */
import type { ComponentChildren } from 'preact';

/** A work page's head (ledger, reuse, carriers, catalogue, review): its title, and the muted intro below it. */
export function PageHead({ title, intro }: { title: string; intro?: string }) {
  return (
    <>
      <div class="work-head">
        <h1>{title}</h1>
      </div>
      {intro ? (
        <p class="muted" style={{ margin: 0 }}>
          {intro}
        </p>
      ) : null}
    </>
  );
}

/** An admin page's head (algorithms, deployments, video): the h1 that labels the page, a subtitle, actions on the right. */
export function AdminHead({
  titleId,
  title,
  subtitle,
  actions,
}: {
  titleId: string;
  title: ComponentChildren;
  subtitle: ComponentChildren;
  actions?: ComponentChildren;
}) {
  return (
    <header class="admin-head">
      <div>
        <h1 id={titleId}>{title}</h1>
        <p class="muted">{subtitle}</p>
      </div>
      {actions ? <div class="admin-actions">{actions}</div> : null}
    </header>
  );
}
