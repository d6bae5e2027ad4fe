import { CitysenseError } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';

/** `from`/`to` query parameters: ISO 8601 or milliseconds since the epoch. */
export const TimeRangeQuery = Type.Object({
  from: Type.Optional(
    Type.String({ description: 'start, ISO 8601 or epoch ms; default: 1 hour before `to`' }),
  ),
  to: Type.Optional(Type.String({ description: 'end, ISO 8601 or epoch ms; default: now' })),
});

/** Bucket width accepted by bucketed reads. */
export const BucketSchema = Type.Union(
  [Type.Literal('1m'), Type.Literal('5m'), Type.Literal('15m'), Type.Literal('1h'), Type.Literal('1d')],
  { description: 'aggregate into buckets of this width (read from the 1-minute continuous aggregate)' },
);

function parseInstant(text: string, name: string): Date {
  const d = /^\d+$/.test(text) ? new Date(Number(text)) : new Date(text);
  if (Number.isNaN(d.getTime())) {
    throw new CitysenseError(
      'CS_ERR_QUERY_TIME',
      `${name}="${text.slice(0, 40)}" is not a time: use ISO 8601 or epoch milliseconds`,
      400,
    );
  }
  return d;
}

/** Resolves `from`/`to` with defaults (the last hour); throws CS_ERR_QUERY_RANGE when inverted. */
export function resolveRange(q: { from?: string | undefined; to?: string | undefined }): {
  from: Date;
  to: Date;
} {
  const to = q.to ? parseInstant(q.to, 'to') : new Date();
  const from = q.from ? parseInstant(q.from, 'from') : new Date(to.getTime() - 3_600_000);
  if (from > to) throw new CitysenseError('CS_ERR_QUERY_RANGE', '`from` is after `to`', 400);
  return { from, to };
}
