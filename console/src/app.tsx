/**
 * The console shell: login gate, header (brand, platform health, language, user),
 * role-filtered navigation (a drawer on narrow screens) and the page outlet.
 */
import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, type HealthSummary, type Me } from './api.ts';
import { ComingSoon } from './components/coming-soon.tsx';
import { ErrorPanel, Loading } from './components/states.tsx';
import { lang, t } from './i18n.ts';
import { health, runLiveStream } from './live.ts';
import LoginPage from './pages/login/index.tsx';
import { mayOpen, type NavGroup, PAGES, type PageDef, visiblePages } from './pages.ts';
import { href, useRoute } from './router.ts';
import { session } from './session.ts';
import { HealthBar } from './shell/health-bar.tsx';
import { LangSwitch } from './shell/lang-switch.tsx';
import { useValue } from './signal.ts';

/** The whole console. */
export function App() {
  useValue(lang);
  const s = useValue(session);
  if (!s) return <LoginPage />;
  return <Shell me={s.me} />;
}

function Shell({ me }: { me: Me }) {
  const route = useRoute();
  const [navOpen, setNavOpen] = useState(false);
  useEffect(() => {
    const abort = new AbortController();
    api.get<HealthSummary>('/v1/health/summary').then(
      (h) => health.get() ?? health.set(h),
      () => undefined, // The stream below brings it too; a failure there shows in the live dot.
    );
    void runLiveStream(api, abort.signal);
    return () => abort.abort();
  }, []);
  useEffect(() => setNavOpen(false), [route.page]);
  const pages = visiblePages(me);
  const page = PAGES.find((p) => p.id === (route.page || 'map'));
  const name = me.kind === 'admin' ? t('header.admin') : me.user.displayName || me.user.username;
  return (
    <div class={`shell${navOpen ? ' nav-open' : ''}`}>
      <button type="button" class="skip-link" onClick={() => document.getElementById('main')?.focus()}>
        {t('app.skip')}
      </button>
      <header class="topbar">
        <button
          type="button"
          class="btn btn-ghost nav-toggle"
          aria-expanded={navOpen}
          aria-controls="nav"
          onClick={() => setNavOpen((o) => !o)}
        >
          <span aria-hidden="true">☰</span>
          <span class="sr-only">{t('nav.menu')}</span>
        </button>
        <a class="brand" href={href('map')}>
          <span class="brand-dot" aria-hidden="true" />
          {t('app.title')}
        </a>
        <HealthBar />
        <div class="topbar-end">
          <LangSwitch />
          <span
            class="user"
            data-testid="user-name"
            title={me.kind === 'user' ? me.user.agencyId : undefined}
          >
            {name}
          </span>
          <button
            type="button"
            class="btn btn-ghost"
            onClick={() => {
              api.logout();
              session.set(null);
            }}
          >
            {t('header.signOut')}
          </button>
        </div>
      </header>
      <Nav pages={pages} current={page?.id ?? ''} />
      <button
        type="button"
        class="nav-scrim"
        tabIndex={-1}
        aria-hidden="true"
        onClick={() => setNavOpen(false)}
      />
      <main id="main" class="content" tabIndex={-1}>
        {page && mayOpen(me, page) ? <PageOutlet page={page} /> : <NotFound />}
      </main>
    </div>
  );
}

const GROUPS: NavGroup[] = ['everyone', 'field', 'agency', 'review', 'algorithms', 'ops'];

function Nav({ pages, current }: { pages: PageDef[]; current: string }) {
  return (
    <nav id="nav" class="nav" aria-label={t('nav.label')}>
      {GROUPS.map((g) => {
        const inGroup = pages.filter((p) => p.group === g);
        if (inGroup.length === 0) return null;
        return (
          <div class="nav-group" key={g}>
            <p class="nav-group-title">{t(`nav.group.${g}`)}</p>
            <ul>
              {inGroup.map((p) => (
                <li key={p.id}>
                  <a
                    href={href(p.id)}
                    data-page={p.id}
                    aria-current={p.id === current ? 'page' : undefined}
                    class={p.load ? undefined : 'soon'}
                  >
                    <span class="nav-icon" aria-hidden="true">
                      {p.icon}
                    </span>
                    {t(p.title)}
                  </a>
                </li>
              ))}
            </ul>
          </div>
        );
      })}
    </nav>
  );
}

const loaded = new Map<string, ComponentType>();

function PageOutlet({ page }: { page: PageDef }) {
  const [, setTick] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const Component = loaded.get(page.id);
  useEffect(() => {
    document.title = `${t(page.title)} · citysense`;
    if (!page.load || loaded.has(page.id)) return;
    setError(null);
    page.load().then(
      (m) => {
        loaded.set(page.id, m.default);
        setTick((n) => n + 1);
      },
      (e: unknown) => setError(e),
    );
  }, [page]);
  if (!page.load) return <ComingSoon page={page} />;
  if (error) return <ErrorPanel error={error} onRetry={() => location.reload()} />;
  if (!Component) return <Loading />;
  return <Component />;
}

function NotFound() {
  return (
    <section class="coming-soon">
      <h1>{t('notFound.title')}</h1>
      <p>
        <a class="btn" href={href('map')}>
          {t('notFound.back')}
        </a>
      </p>
    </section>
  );
}
