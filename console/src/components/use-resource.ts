/** Loads data for a page from the API, with loading and error states and reload. */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { type ApiError, asApiError } from '../api.ts';

/** State of one resource. */
export interface Resource<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` on mount and whenever `deps` change; `reload()` runs it again. */
export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[] = []): Resource<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(abort.signal).then(
      (data) => !abort.signal.aborted && setState({ data, loading: false }),
      (e: unknown) => !abort.signal.aborted && setState({ error: asApiError(e), loading: false }),
    );
    return () => abort.abort();
  }, [...deps, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}
