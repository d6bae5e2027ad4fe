/** Designed loading, empty and error states shared by every page. */
import type { ComponentChildren } from 'preact';
import { ApiError } from '../api.ts';
import { hasMessage, type MessageKey, t } from '../i18n.ts';

/** A spinner with a label, announced politely to screen readers. */
export function Loading({ label }: { label?: string }) {
  return (
    <div class="state state-loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      <span>{label ?? t('state.loading')}</span>
    </div>
  );
}

/** An empty list or page, with an optional action. */
export function Empty({ title, children }: { title?: string; children?: ComponentChildren }) {
  return (
    <div class="state state-empty">
      <span class="state-icon" aria-hidden="true">
        ∅
      </span>
      <p>{title ?? t('state.empty')}</p>
      {children}
    </div>
  );
}

/** What the user should do about an API error: a hint for its code, else for its status. */
export function hintFor(e: ApiError): MessageKey {
  const specific = `error.hint.${e.code}`;
  if (hasMessage(specific)) return specific;
  if (e.code === 'CS_ERR_NETWORK') return 'error.hint.network';
  if (e.status >= 500) return 'error.hint.5xx';
  const byStatus: Record<number, MessageKey> = {
    400: 'error.hint.400',
    401: 'error.hint.401',
    403: 'error.hint.403',
    404: 'error.hint.404',
    409: 'error.hint.409',
    429: 'error.hint.429',
  };
  return byStatus[e.status] ?? 'error.hint.other';
}

/** An API error: its code, the hub's message and what to do; optionally a retry button. */
export function ErrorPanel({
  error,
  onRetry,
  compact,
}: {
  error: unknown;
  onRetry?: () => void;
  compact?: boolean;
}) {
  const e = error instanceof ApiError ? error : new ApiError('CS_ERR_CONSOLE', String(error), 0, '');
  return (
    <div class={`state state-error${compact ? ' compact' : ''}`} role="alert" data-code={e.code}>
      <p class="error-title">
        <span aria-hidden="true">⚠</span> {t('error.title')}
        {e.status ? <span class="error-status"> HTTP {e.status}</span> : null}
      </p>
      <dl class="error-fields">
        <dt>{t('error.code')}</dt>
        <dd>
          <code class="error-code">{e.code}</code>
        </dd>
        <dt class="sr-only">message</dt>
        <dd class="error-message">{e.message}</dd>
        <dt>{t('error.todo')}</dt>
        <dd class="error-hint">{t(hintFor(e))}</dd>
      </dl>
      {onRetry ? (
        <button type="button" class="btn" onClick={onRetry}>
          {t('state.retry')}
        </button>
      ) : null}
    </div>
  );
}
