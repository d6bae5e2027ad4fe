import { fileURLToPath } from 'node:url';
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import type { RgbFrame } from '../inference/preprocess.ts';
import { type FindingKind, QualityDiagnoser } from './diagnoser.ts';

const samples = ['000000000139.jpg', '000000000724.jpg'].map((name) =>
  fileURLToPath(new URL(`../../packages/yolox-nano/samples/${name}`, import.meta.url)),
);

async function decode(image: Sharp): Promise<RgbFrame> {
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
    width: info.width,
    height: info.height,
  };
}

/** Findings of a fresh diagnoser on one frame. */
function kinds(frame: RgbFrame): FindingKind[] {
  return new QualityDiagnoser()
    .assess(frame, 0)
    .findings.map((f) => f.kind)
    .sort();
}

describe.each(samples)('QualityDiagnoser on %s', (file) => {
  it('finds nothing wrong with the original picture', async () => {
    const { findings } = new QualityDiagnoser().assess(await decode(sharp(file)), 0);
    expect(findings).toEqual([]);
  });

  it('reports a darkened picture as critically too dark', async () => {
    const { findings } = new QualityDiagnoser().assess(await decode(sharp(file).linear(0.15, 0)), 0);
    expect(findings).toEqual([expect.objectContaining({ kind: 'too-dark', severity: 'critical' })]);
  });

  it('reports an over-exposed picture as too bright', async () => {
    expect(kinds(await decode(sharp(file).linear(1, 200)))).toEqual(['too-bright']);
    expect(kinds(await decode(sharp(file).modulate({ brightness: 3 })))).toEqual(['too-bright']);
  });

  it('reports a defocused picture as blurred', async () => {
    const { findings } = new QualityDiagnoser().assess(await decode(sharp(file).blur(8)), 0);
    expect(findings).toEqual([expect.objectContaining({ kind: 'blur', severity: 'critical' })]);
  });

  it('reports a red-tinted picture as colour cast towards red', async () => {
    const { findings, metrics } = new QualityDiagnoser().assess(
      await decode(sharp(file).tint({ r: 255, g: 80, b: 80 })),
      0,
    );
    expect(findings.map((f) => f.kind)).toEqual(['colour-cast']);
    expect(metrics.meanA).toBeGreaterThan(20);
  });

  it('reports a lens covered over ~70% of the frame as occluded, not as merely dark', async () => {
    const { width = 0, height = 0 } = await sharp(file).metadata();
    const cover = await sharp({
      create: {
        width: Math.round(width * 0.84),
        height: Math.round(height * 0.84),
        channels: 3,
        background: '#000',
      },
    })
      .png()
      .toBuffer();
    const frame = await decode(sharp(file).composite([{ input: cover, left: 0, top: 0 }]));
    const { findings } = new QualityDiagnoser().assess(frame, 0);
    expect(findings).toEqual([expect.objectContaining({ kind: 'occlusion', severity: 'warning' })]);
    expect(findings[0]?.value).toBeGreaterThan(0.6);
  });

  it('reports the same picture repeated for longer than the limit as frozen, then critical', async () => {
    const frame = await decode(sharp(file));
    const diagnoser = new QualityDiagnoser({ frozen: { warning: 5, critical: 20 } });
    const at = (seconds: number) => diagnoser.assess(frame, seconds * 1000).findings;
    for (let s = 0; s <= 4; s++) expect(at(s)).toEqual([]);
    expect(at(6)).toEqual([expect.objectContaining({ kind: 'frozen', severity: 'warning', value: 6 })]);
    expect(at(21)).toEqual([
      expect.objectContaining({ kind: 'frozen', severity: 'critical', threshold: 20 }),
    ]);
  });

  it('does not call a live picture frozen', async () => {
    const frames = [await decode(sharp(file)), await decode(sharp(file).linear(1, 6))];
    const diagnoser = new QualityDiagnoser({ frozen: { warning: 5 } });
    for (let s = 0; s < 30; s++)
      expect(diagnoser.assess(frames[s % 2] as RgbFrame, s * 1000).findings).toEqual([]);
  });
});

describe('QualityDiagnoser', () => {
  it('reports uniform "no signal" screens as critical signal loss and nothing else', async () => {
    for (const background of ['#000000', '#0000ff', '#808080']) {
      const frame = await decode(sharp({ create: { width: 704, height: 576, channels: 3, background } }));
      const diagnoser = new QualityDiagnoser();
      for (let s = 0; s < 30; s += 5) {
        const { findings } = diagnoser.assess(frame, s * 1000);
        expect(findings).toEqual([expect.objectContaining({ kind: 'signal-loss', severity: 'critical' })]);
      }
    }
  });

  it('raises a warning that persists past escalateAfter to critical', async () => {
    const bright = await decode(sharp(samples[0] as string).modulate({ brightness: 3 }));
    const diagnoser = new QualityDiagnoser({ escalateAfter: 60 });
    // Alternate two exposures so the picture is not frozen.
    const frames = [bright, await decode(sharp(samples[0] as string).modulate({ brightness: 2.9 }))];
    const severity = (s: number) =>
      diagnoser.assess(frames[s % 2] as RgbFrame, s * 1000).findings[0]?.severity;
    expect(severity(0)).toBe('warning');
    expect(severity(59)).toBe('warning');
    expect(severity(61)).toBe('critical');
  });

  it('rejects invalid thresholds with every problem listed', () => {
    let error: unknown;
    try {
      new QualityDiagnoser({ tooDark: { warning: -1 }, blur: { warning: 5, critical: 50 }, nope: 1 });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'CS_ERR_QUALITY_THRESHOLDS', statusCode: 400 });
    const { problems } = (error as { details: { problems: string[] } }).details;
    expect(problems.join('\n')).toMatch(/tooDark\/warning/);
    expect(problems.join('\n')).toMatch(/nope|additional/i);
    expect(() => new QualityDiagnoser({ blur: { warning: 5, critical: 50 } })).toThrow(
      expect.objectContaining({ code: 'CS_ERR_QUALITY_THRESHOLDS', message: expect.stringMatching(/blur/) }),
    );
  });
});
