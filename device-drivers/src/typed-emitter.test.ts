import { rootLogger } from '@citysense/protocol';
import { describe, expect, it } from 'vitest';
import type { Reading } from './driver.ts';
import { DriverEmitter } from './typed-emitter.ts';

class Probe extends DriverEmitter {
  send(batch: Reading[]): void {
    this.emit('readings', batch);
  }
  listeners(): number {
    return this.listenerCount('readings');
  }
}

const batch: Reading[] = [{ device: 'd', metric: 'm', time: 1, value: 1, quality: 'good' }];

describe('DriverEmitter', () => {
  it('delivers to every listener once, and stops after off', () => {
    const probe = new Probe(rootLogger);
    const got: Reading[][] = [];
    const listener = (b: Reading[]) => got.push(b);
    probe.on('readings', listener).on('readings', listener);
    probe.send(batch);
    expect(got).toEqual([batch]);
    probe.off('readings', listener);
    probe.send(batch);
    expect(got).toHaveLength(1);
    expect(probe.listeners()).toBe(0);
  });

  it('isolates a throwing or rejecting listener so the others still get the event', async () => {
    const probe = new Probe(rootLogger);
    let delivered = 0;
    probe.on('readings', () => {
      throw new Error('consumer bug');
    });
    probe.on('readings', (() => Promise.reject(new Error('async consumer bug'))) as () => void);
    probe.on('readings', () => {
      delivered += 1;
    });
    expect(() => probe.send(batch)).not.toThrow();
    await Promise.resolve();
    expect(delivered).toBe(1);
  });
});
