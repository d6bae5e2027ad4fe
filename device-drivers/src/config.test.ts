import { hasCode } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { resolveDriverConfig } from './config.ts';

const Schema = Type.Object(
  {
    intervalMs: Type.Integer({ minimum: 1, default: 1000 }),
    mode: Type.Union([Type.Literal('fast'), Type.Literal('slow')], { default: 'slow' }),
  },
  { additionalProperties: false },
);

describe('resolveDriverConfig', () => {
  it('applies defaults and freezes the result', () => {
    const config = resolveDriverConfig(Schema, undefined, 'probe options');
    expect(config).toEqual({ intervalMs: 1000, mode: 'slow' });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reports every problem at once with a coded error', () => {
    let caught: unknown;
    try {
      resolveDriverConfig(Schema, { intervalMs: 0, mode: 'turbo', extra: 1 }, 'probe options');
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'CS_ERR_CONFIG_INVALID')).toBe(true);
    const details = (caught as { details: Array<{ path: string; message: string }> }).details;
    expect(details.map((p) => p.path)).toEqual(expect.arrayContaining(['/intervalMs', '/mode']));
    expect(details.find((p) => p.path === '/mode')?.message).toBe('must be one of fast, slow');
  });
});
