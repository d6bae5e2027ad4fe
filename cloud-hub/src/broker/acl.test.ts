import { describe, expect, it } from 'vitest';
import { nodeMayPublish, nodeMaySubscribe } from './acl.ts';
import { topicMatches } from './topic-filter.ts';

describe('node ACL on the embedded broker', () => {
  it('lets a node publish only its own Sparkplug messages', () => {
    expect(nodeMayPublish('city', 'pole-1', 'spBv1.0/city/NBIRTH/pole-1')).toBe(true);
    expect(nodeMayPublish('city', 'pole-1', 'spBv1.0/city/DDATA/pole-1/air')).toBe(true);
    expect(nodeMayPublish('city', 'pole-1', 'spBv1.0/city/NDATA/pole-2')).toBe(false);
    expect(nodeMayPublish('city', 'pole-1', 'spBv1.0/other/NDATA/pole-1')).toBe(false);
    expect(nodeMayPublish('city', 'pole-1', 'spBv1.0/city/NCMD/pole-1')).toBe(false);
    expect(nodeMayPublish('city', 'pole-1', 'spBv1.0/STATE/citysense-hub')).toBe(false);
    expect(nodeMayPublish('city', 'pole-1', 'spBv1.0/city/DDATA/pole-1')).toBe(false);
    expect(nodeMayPublish('city', 'pole-1', 'spBv1.0/city/NDATA/pole-1/x')).toBe(false);
    expect(nodeMayPublish('city', 'pole-1', 'anything/else')).toBe(false);
  });

  it('lets a node subscribe only to its commands and host STATE', () => {
    expect(nodeMaySubscribe('city', 'pole-1', 'spBv1.0/city/NCMD/pole-1')).toBe(true);
    expect(nodeMaySubscribe('city', 'pole-1', 'spBv1.0/city/DCMD/pole-1/+')).toBe(true);
    expect(nodeMaySubscribe('city', 'pole-1', 'spBv1.0/STATE/citysense-hub')).toBe(true);
    expect(nodeMaySubscribe('city', 'pole-1', 'spBv1.0/city/NCMD/pole-2')).toBe(false);
    expect(nodeMaySubscribe('city', 'pole-1', 'spBv1.0/city/#')).toBe(false);
    expect(nodeMaySubscribe('city', 'pole-1', '#')).toBe(false);
    expect(nodeMaySubscribe('city', 'pole-1', 'spBv1.0/city/DCMD/pole-1/a/b')).toBe(false);
  });
});

describe('topic filters', () => {
  it('matches + and # per MQTT 3.1.1 §4.7', () => {
    expect(topicMatches('spBv1.0/city/#', 'spBv1.0/city/NDATA/n')).toBe(true);
    expect(topicMatches('spBv1.0/+/NDATA/+', 'spBv1.0/city/NDATA/n')).toBe(true);
    expect(topicMatches('spBv1.0/+/NDATA/+', 'spBv1.0/city/NDATA/n/d')).toBe(false);
    expect(topicMatches('a/b', 'a')).toBe(false);
  });
});
