/** One user action (a POST) at a time: busy while it runs, its error kept for an ErrorPanel. */
import { useCallback, useState } from 'preact/hooks';
import { type ApiError, asApiError } from '../api.ts';

/** State of a user action (a POST): busy while it runs, its error when it fails. */
export interface Action {
  busy: boolean;
  error: ApiError | undefined;
  /** Runs `work`; resolves to its result, or undefined when it failed (the error is kept). */
  run<T>(work: () => Promise<T>): Promise<T | undefined>;
  clear(): void;
}

/** One user action at a time, with its error kept for an ErrorPanel. */
export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const run = useCallback(async <T>(work: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      return await work();
    } catch (e) {
      setError(asApiError(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: useCallback(() => setError(undefined), []) };
}
