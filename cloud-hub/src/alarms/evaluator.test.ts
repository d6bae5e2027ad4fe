import { describe, expect, it } from 'vitest';
import { type AlarmSink, RuleEvaluator, type SeriesKey } from './evaluator.ts';
import type { AlarmRule } from './rules.ts';

/** Records what the evaluator decides. */
class Recorder implements AlarmSink {
  readonly events: string[] = [];
  raise(_key: string, rule: AlarmRule, s: SeriesKey, value: number | null): void {
    this.events.push(`raise ${rule.id} ${s.node}/${s.device}/${s.metric} ${value}`);
  }
  repeat(_key: string, value: number | null): void {
    this.events.push(`repeat ${value}`);
  }
  clear(_key: string, value: number | null): void {
    this.events.push(`clear ${value}`);
  }
}

const rule = (r: Partial<AlarmRule> & Pick<AlarmRule, 'id' | 'scope' | 'condition'>): AlarmRule => ({
  name: r.id,
  enabled: true,
  severity: 'major',
  agencyId: null,
  message: null,
  webhookUrl: null,
  createdAt: '',
  updatedAt: '',
  ...r,
});

describe('rule evaluator', () => {
  it('matches by metric pattern, node and device scope, and ignores text for numeric rules', () => {
    const sink = new Recorder();
    const e = new RuleEvaluator(sink);
    e.upsert(
      rule({
        id: 'pm',
        scope: { nodes: ['n1'], device: 'air', metric: 'PM*' },
        condition: { kind: 'threshold', op: '>', value: 10 },
      }),
    );
    e.observe('n2', 'air', 'PM2.5', 0, 50);
    e.observe('n1', 'water', 'PM2.5', 0, 50);
    e.observe('n1', 'air', 'Noise', 0, 50);
    e.observe('n1', 'air', 'PM10', 0, null);
    expect(sink.events).toEqual([]);
    e.observe('n1', 'air', 'PM10', 0, 50);
    expect(sink.events).toEqual(['raise pm n1/air/PM10 50']);
  });

  it('clears an alarm loaded at start, and a removed rule forgets its series', () => {
    const sink = new Recorder();
    const e = new RuleEvaluator(sink);
    const r = rule({
      id: 'cpu',
      scope: { metric: 'Health/CPU Percent' },
      condition: { kind: 'threshold', op: '>=', value: 90 },
    });
    e.upsert(r);
    e.markRaised('cpu', { node: 'n1', device: '', metric: 'Health/CPU Percent' });
    e.observe('n1', '', 'Health/CPU Percent', 0, 95);
    e.observe('n1', '', 'Health/CPU Percent', 0, 10);
    expect(sink.events).toEqual(['repeat 95', 'clear 10']);
    e.remove('cpu');
    e.observe('n1', '', 'Health/CPU Percent', 0, 99);
    expect(sink.events).toHaveLength(2);
    e.upsert({ ...r, enabled: false });
    e.observe('n1', '', 'Health/CPU Percent', 0, 99);
    expect(sink.events).toHaveLength(2);
  });

  it('fires absence and duration from tick() on the hub clock', () => {
    const sink = new Recorder();
    const e = new RuleEvaluator(sink);
    e.upsert(
      rule({
        id: 'gone',
        scope: { nodes: ['n1'], metric: 'Health/CPU Percent' },
        condition: { kind: 'absence', forS: 10 },
      }),
      0,
    );
    e.upsert(
      rule({
        id: 'long',
        scope: { metric: 'Level' },
        condition: { kind: 'duration', op: '>', value: 5, forS: 10 },
      }),
      0,
    );
    // The named node never sent anything: still watched from the rule's creation.
    e.tick(9_999);
    expect(sink.events).toEqual([]);
    e.tick(10_000);
    expect(sink.events).toEqual(['raise gone n1//Health/CPU Percent null']);
    e.observe('n1', '', 'Health/CPU Percent', 10_500, 3, 10_500);
    expect(sink.events.at(-1)).toBe('clear 3');

    e.observe('n2', 'tank', 'Level', 0, 6, 20_000);
    e.observe('n2', 'tank', 'Level', 0, 4, 25_000); // contrary sample: the clock starts over
    e.observe('n2', 'tank', 'Level', 0, 7, 26_000);
    const long = () => sink.events.filter((x) => x.startsWith('raise long'));
    e.tick(35_999);
    expect(long()).toEqual([]);
    e.tick(36_000);
    expect(long()).toEqual(['raise long n2/tank/Level 7']);
  });
});
