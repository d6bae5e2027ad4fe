import { describe, expect, it } from 'vitest';
import { hasCode } from '../errors.ts';
import { formatTopic, parseTopic, stateTopic } from './topic.ts';

describe('Sparkplug topics', () => {
  it('formats and parses node and device topics', () => {
    const t = { group: 'city', type: 'DDATA' as const, node: 'pole-001', device: 'pole-001.air' };
    expect(formatTopic(t)).toBe('spBv1.0/city/DDATA/pole-001/pole-001.air');
    expect(parseTopic(formatTopic(t))).toEqual(t);
    expect(parseTopic('spBv1.0/city/NBIRTH/pole-001')).toEqual({
      group: 'city',
      type: 'NBIRTH',
      node: 'pole-001',
      device: undefined,
    });
    expect(stateTopic('citysense-hub')).toBe('spBv1.0/STATE/citysense-hub');
  });

  it.each([
    ['spBv1.0/city/NOPE/n'],
    ['spAv1.0/city/NDATA/n'],
    ['spBv1.0/city/DDATA/n'],
    ['spBv1.0/city/NDATA/n/d'],
    ['spBv1.0//NDATA/n'],
    ['spBv1.0/city/NDATA/n/d/e'],
    ['garbage'],
  ])('refuses %s with CS_ERR_TOPIC_INVALID', (topic) => {
    expect(() => parseTopic(topic)).toThrow();
    try {
      parseTopic(topic);
    } catch (err) {
      expect(hasCode(err, 'CS_ERR_TOPIC_INVALID')).toBe(true);
    }
  });
});
