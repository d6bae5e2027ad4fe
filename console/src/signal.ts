/**
 * A value that components can watch: the console's shared state (language, session,
 * platform health) without a state library. `useValue(s)` re-renders on change.
 */
import { useEffect, useState } from 'preact/hooks';

/** A watched value. */
export interface Signal<T> {
  get(): T;
  set(next: T): void;
  subscribe(listener: (value: T) => void): () => void;
}

/** Creates a watched value. */
export function signal<T>(initial: T): Signal<T> {
  let value = initial;
  const listeners = new Set<(value: T) => void>();
  return {
    get: () => value,
    set(next) {
      if (Object.is(next, value)) return;
      value = next;
      for (const l of [...listeners]) l(value);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** The current value of `s`; the component re-renders when it changes. */
export function useValue<T>(s: Signal<T>): T {
  const [, setTick] = useState(0);
  useEffect(() => s.subscribe(() => setTick((n) => n + 1)), [s]);
  return s.get();
}
