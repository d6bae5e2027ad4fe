/** Login: username and password against POST /v1/auth/login. */
import { useState } from 'preact/hooks';
import { type ApiError, api, asApiError } from '../../api.ts';
import { ErrorPanel } from '../../components/states.tsx';
import { t } from '../../i18n.ts';
import { session, sessionEnded } from '../../session.ts';
import { LangSwitch } from '../../shell/lang-switch.tsx';
import { useValue } from '../../signal.ts';

/** The login page. */
export default function LoginPage() {
  const ended = useValue(sessionEnded);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [withToken, setWithToken] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError(null);
    try {
      const s = withToken
        ? await api.loginWithToken(String(form.get('token') ?? '').trim())
        : await api.login(String(form.get('username') ?? ''), String(form.get('password') ?? ''));
      sessionEnded.set(false);
      session.set(s);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <div class="login-lang">
        <LangSwitch />
      </div>
      <form class="login-card" onSubmit={submit} aria-labelledby="login-title">
        <div class="brand brand-large" aria-hidden="true">
          <span class="brand-dot" /> citysense
        </div>
        <h1 id="login-title">{t('login.title')}</h1>
        <p class="muted">{t('login.subtitle')}</p>
        {ended && !error ? <p class="notice">{t('login.expired')}</p> : null}
        {withToken ? (
          <label>
            {t('login.token')}
            <input name="token" type="password" autocomplete="off" required autofocus />
          </label>
        ) : (
          <>
            <label>
              {t('login.username')}
              <input name="username" autocomplete="username" required autofocus />
            </label>
            <label>
              {t('login.password')}
              <input name="password" type="password" autocomplete="current-password" required />
            </label>
          </>
        )}
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? t('login.busy') : t('login.submit')}
        </button>
        <button type="button" class="link-button" onClick={() => setWithToken((w) => !w)}>
          {withToken ? t('login.withPassword') : t('login.withToken')}
        </button>
        {error ? <ErrorPanel error={error} compact /> : null}
      </form>
    </main>
  );
}
