import { describe, expect, it } from 'vitest';
import { compileJsonPath, evaluateJsonPath, type JsonPath } from './json-path.ts';
import { parseTime } from './mapping.ts';
import { topicFilterProblems, topicMatches } from './topic-filter.ts';

const path = (source: string): JsonPath => {
  const compiled = compileJsonPath(source);
  if (typeof compiled === 'string') throw new Error(compiled);
  return compiled;
};

describe('JSON path', () => {
  const doc = { data: { pm25: 12, list: [{ v: 1 }, { v: 2 }] }, level_cm: 3 };
  it('follows dots and array indexes, and finds nothing where nothing is', () => {
    expect(evaluateJsonPath(doc, path('$.data.pm25'))).toBe(12);
    expect(evaluateJsonPath(doc, path('$.data.list[1].v'))).toBe(2);
    expect(evaluateJsonPath(doc, path('$.level_cm'))).toBe(3);
    expect(evaluateJsonPath(doc, path('$'))).toBe(doc);
    expect(evaluateJsonPath(doc, path('$.data.list[5].v'))).toBeUndefined();
    expect(evaluateJsonPath(doc, path('$.data.pm25.x'))).toBeUndefined();
    expect(evaluateJsonPath(doc, path('$.__proto__'))).toBeUndefined();
    expect(evaluateJsonPath(doc, path('$.data.list.length'))).toBeUndefined();
  });
  it('refuses anything but dots and indexes', () => {
    for (const bad of ['data.pm25', '$..x', '$.a[*]', '$.a[-1]', '$.a[01]', "$['a']", '$.a[0'])
      expect(typeof compileJsonPath(bad)).toBe('string');
  });
});

describe('topic filters', () => {
  it('validate and match as MQTT 3.1.1 §4.7 says', () => {
    expect(topicFilterProblems('nbiot/+/up')).toEqual([]);
    expect(topicFilterProblems('a/#/b')).toHaveLength(1);
    expect(topicFilterProblems('a/b+')).toHaveLength(1);
    expect(topicMatches('nbiot/+/up', 'nbiot/1/up')).toBe(true);
    expect(topicMatches('nbiot/+/up', 'nbiot/1/down')).toBe(false);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
  });
});

describe('payload times', () => {
  const now = Date.UTC(2025, 0, 1);
  it('reads epoch-s, epoch-ms and ISO 8601 with a zone, and refuses implausible ones', () => {
    expect(parseTime(1_700_000_000, 'epoch-s', now)).toBe(1_700_000_000_000);
    expect(parseTime(1_700_000_000_123, 'epoch-ms', now)).toBe(1_700_000_000_123);
    expect(parseTime('2024-05-01T08:00:00.123456789Z', 'iso8601', now)).toBe(
      Date.UTC(2024, 4, 1, 8, 0, 0, 123),
    );
    expect(parseTime('2024-05-01T16:00:00+08:00', 'iso8601', now)).toBe(Date.UTC(2024, 4, 1, 8));
    expect(typeof parseTime('2024-05-01 08:00:00', 'iso8601', now)).toBe('string');
    expect(typeof parseTime(0, 'epoch-s', now)).toBe('string');
    expect(typeof parseTime(1_700_000_000_000, 'epoch-s', now)).toBe('string');
  });
});
