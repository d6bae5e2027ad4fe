import { describe, expect, it } from 'vitest';
import { type ConfigProblem, resolveAgentConfig } from './config.ts';

describe('resolveAgentConfig', () => {
  it('gives a working config from nothing', () => {
    const config = resolveAgentConfig({});
    expect(config.stateDir).toBe('./data/agent');
    expect(config.spool).toEqual({ maxBytes: 256 * 1024 * 1024, policy: 'drop-oldest' });
    expect(config.uplink).toEqual({
      window: 512,
      ackTimeoutMs: 15_000,
      backoff: { initialMs: 500, maxMs: 30_000 },
    });
    expect(config.healthIntervalMs).toBe(10_000);
    expect(config.drivers).toEqual([{ type: 'lamp-pole-sim', id: 'lamp-pole-sim', options: {} }]);
    expect(Object.isFrozen(config.uplink.backoff)).toBe(true);
  });

  it('reports every problem at once', () => {
    let problems: ConfigProblem[] = [];
    try {
      resolveAgentConfig({
        hubUrl: 'ftp://hub',
        healthIntervalMS: 5,
        spool: { policy: 'keep-all' },
        uplink: { window: 0, backoff: { initialMs: 1000, maxMs: 10 } },
        drivers: [
          { type: 'camera', id: 'a' },
          { type: 'lamp-pole-sim', id: 'a' },
        ],
      });
    } catch (err) {
      expect(err).toMatchObject({ code: 'CS_ERR_CONFIG_INVALID' });
      problems = (err as { details: ConfigProblem[] }).details;
    }
    const paths = problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/hubUrl',
        '/healthIntervalMS',
        '/spool/policy',
        '/uplink/window',
        '/uplink/backoff/maxMs',
        '/drivers/0/type',
        '/drivers/1/id',
      ]),
    );
    expect(problems.find((p) => p.path === '/spool/policy')?.message).toBe(
      'must be one of drop-oldest, reject-new',
    );
  });
});
