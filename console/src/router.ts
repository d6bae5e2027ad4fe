/**
 * Hash routing (`#/map`, `#/fleet?node=pole-001`): works behind any static server or
 * path prefix, and bookmarks survive reloads without server rewrites.
 */
import { signal, useValue } from './signal.ts';

/** A parsed location: page id, the rest of the path, and query parameters. */
export interface Route {
  page: string;
  rest: string[];
  params: URLSearchParams;
}

function parse(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const [path = '', query = ''] = raw.split('?');
  const [page = '', ...rest] = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { page, rest, params: new URLSearchParams(query) };
}

const current = signal<Route>(parse(location.hash));
window.addEventListener('hashchange', () => current.set(parse(location.hash)));

/** The current route; re-renders on navigation. */
export function useRoute(): Route {
  return useValue(current);
}

/** The href of a page (for <a href>). */
export function href(page: string, params?: Record<string, string>): string {
  const q = params ? new URLSearchParams(params).toString() : '';
  return `#/${page}${q ? `?${q}` : ''}`;
}

/** Goes to a page. */
export function navigate(page: string, params?: Record<string, string>): void {
  location.hash = href(page, params);
}
