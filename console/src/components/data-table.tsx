/**
 * The table every list page uses: columns as data, keyboard-sortable headers, and
 * the shared loading / empty / error states instead of a blank area.
 */
import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { ApiError } from '../api.ts';
import { Empty, ErrorPanel, Loading } from './states.tsx';
import type { Resource } from './use-resource.ts';

/** One column: header, cell renderer, optional sort key. */
export interface Column<T> {
  id: string;
  header: string;
  cell: (row: T) => ComponentChildren;
  sort?: (row: T) => string | number;
  align?: 'start' | 'end';
}

/** Props of DataTable. */
export interface DataTableProps<T> {
  caption: string;
  columns: Column<T>[];
  rows: T[] | undefined;
  rowKey: (row: T) => string;
  loading?: boolean;
  error?: ApiError | undefined;
  onRetry?: () => void;
  onRowClick?: (row: T) => void;
  empty?: ComponentChildren;
}

/** A sortable table with designed states. */
export function DataTable<T>(p: DataTableProps<T>) {
  const [sort, setSort] = useState<{ id: string; dir: 1 | -1 } | null>(null);
  const rows = useMemo(() => {
    const col = sort && p.columns.find((c) => c.id === sort.id);
    if (!p.rows || !col?.sort || !sort) return p.rows;
    const key = col.sort;
    return [...p.rows].sort((a, b) => {
      const x = key(a);
      const y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
    });
  }, [p.rows, p.columns, sort]);
  if (p.error) return <ErrorPanel error={p.error} {...(p.onRetry ? { onRetry: p.onRetry } : {})} />;
  if (!rows) return <Loading />;
  if (rows.length === 0) return <Empty>{p.empty}</Empty>;
  return (
    <div class="table-wrap">
      <table class="data-table" aria-busy={p.loading ? 'true' : 'false'}>
        <caption class="sr-only">{p.caption}</caption>
        <thead>
          <tr>
            {p.columns.map((c) => (
              <th
                key={c.id}
                scope="col"
                class={c.align === 'end' ? 'num' : undefined}
                aria-sort={sort?.id === c.id ? (sort.dir === 1 ? 'ascending' : 'descending') : undefined}
              >
                {c.sort ? (
                  <button
                    type="button"
                    class="th-sort"
                    onClick={() =>
                      setSort((s) => ({ id: c.id, dir: s?.id === c.id && s.dir === 1 ? -1 : 1 }))
                    }
                  >
                    {c.header}
                    <span aria-hidden="true">{sort?.id === c.id ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}</span>
                  </button>
                ) : (
                  c.header
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr
              key={p.rowKey(r)}
              class={p.onRowClick ? 'clickable' : undefined}
              tabIndex={p.onRowClick ? 0 : undefined}
              onClick={p.onRowClick ? () => p.onRowClick?.(r) : undefined}
              onKeyDown={
                p.onRowClick
                  ? (e) => {
                      if (e.key === 'Enter') p.onRowClick?.(r);
                    }
                  : undefined
              }
            >
              {p.columns.map((c) => (
                <td key={c.id} class={c.align === 'end' ? 'num' : undefined}>
                  {c.cell(r)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Props of ResourceTable: a DataTable whose rows, states and retry come from one resource. */
export type ResourceTableProps<T> = Omit<
  DataTableProps<T>,
  'rows' | 'loading' | 'error' | 'onRetry' | 'empty'
> & {
  resource: Resource<T[]>;
  /** What to say when the list is empty. */
  empty: string;
};

/** A DataTable over a `useResource` list: loading, error with retry, and a muted empty text. */
export function ResourceTable<T>({ resource, empty, ...table }: ResourceTableProps<T>) {
  return (
    <DataTable
      {...table}
      rows={resource.data}
      loading={resource.loading}
      error={resource.error}
      onRetry={resource.reload}
      empty={<p class="muted">{empty}</p>}
    />
  );
}
