/** The designed placeholder of a page that is planned for this release but not built yet. */
import { t } from '../i18n.ts';
import type { PageDef } from '../pages.ts';

/** "Coming in this release", with the roles that will see it and a link to its API. */
export function ComingSoon({ page }: { page: PageDef }) {
  const roles = ['platform-admin', ...(page.roles ?? [])]
    .map((r) => t(`role.${r}` as Parameters<typeof t>[0]))
    .join('、');
  return (
    <section class="coming-soon" aria-labelledby="soon-title">
      <div class="coming-soon-art" aria-hidden="true">
        {page.icon}
      </div>
      <h1 id="soon-title">{t('soon.title', { page: t(page.title) })}</h1>
      <p>{t('soon.body')}</p>
      <p>
        <a
          class="btn"
          href={`docs#/${encodeURIComponent(page.apiTag ?? '')}`}
          target="_blank"
          rel="noreferrer"
        >
          {t('soon.api')} ↗
        </a>
      </p>
      <p class="muted">{t('soon.roles', { roles })}</p>
    </section>
  );
}
