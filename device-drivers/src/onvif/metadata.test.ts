import { decodeVideoAnalyticsFrame, encodeVideoAnalyticsFrame } from '@citysense/protocol';
import { describe, expect, it } from 'vitest';
import { parseOnvifMetadata, toVideoAnalyticsFrame } from './metadata.ts';

const doc = (objects: string, utc = '2026-05-01T10:00:00.250Z') =>
  `<?xml version="1.0"?><tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema"><tt:VideoAnalytics>` +
  `<tt:Frame UtcTime="${utc}">${objects}</tt:Frame></tt:VideoAnalytics></tt:MetadataStream>`;

const object = (id: number, box: string, types: string) =>
  `<tt:Object ObjectId="${id}"><tt:Appearance><tt:Shape><tt:BoundingBox ${box}/>` +
  `<tt:CenterOfGravity x="0" y="0"/></tt:Shape><tt:Class>${types}</tt:Class></tt:Appearance></tt:Object>`;

describe('ONVIF analytics metadata', () => {
  it('reads −1..1 (y up) boxes into pixels, labelled by the most likely tt:Type', () => {
    const xml = doc(
      object(
        7,
        'left="-0.5" top="0.5" right="0" bottom="-0.5"',
        '<tt:Type Likelihood="0.3">Vehicle</tt:Type><tt:Type Likelihood="0.9">Human</tt:Type>',
      ),
    );
    const [frame] = parseOnvifMetadata(xml, { frameWidth: 1920, frameHeight: 1080, normalisation: 'signed' });
    expect(frame).toMatchObject({
      utcTimeMs: Date.parse('2026-05-01T10:00:00.250Z'),
      normalisation: 'signed',
    });
    expect(frame?.objects).toEqual([
      {
        label: 'Human',
        likelihood: 0.9,
        score: 0.9,
        classId: 0,
        objectId: 7,
        box: { left: 0.25, top: 0.25, right: 0.5, bottom: 0.75 },
        pixelBox: { left: 480, top: 270, right: 960, bottom: 810 },
      },
    ]);
  });

  it('reads 0..1 (y down) boxes when the camera is configured for them, and maps labels to class ids', () => {
    const xml = doc(
      object(
        1,
        'left="0.1" top="0.2" right="0.3" bottom="0.6"',
        '<tt:Type Likelihood="0.75">Vehicle</tt:Type>',
      ) + object(2, 'left="0" top="0" right="1" bottom="1"', '<tt:Type Likelihood="0.5">Face</tt:Type>'),
    );
    const [frame] = parseOnvifMetadata(xml, {
      frameWidth: 100,
      frameHeight: 50,
      normalisation: 'unit',
      labels: ['Human', 'Vehicle', 'Face'],
    });
    expect(frame?.normalisation).toBe('unit');
    expect(frame?.objects.map((o) => [o.label, o.classId, o.pixelBox])).toEqual([
      ['Vehicle', 1, { left: 10, top: 10, right: 30, bottom: 30 }],
      ['Face', 2, { left: 0, top: 0, right: 100, bottom: 50 }],
    ]);
    // Same shape as edge inference: it encodes and validates as a VideoAnalyticsFrame.
    const wire = toVideoAnalyticsFrame(frame ?? expect.fail('no frame'), {
      source: 'cam-north',
      algorithmId: 'onvif-camera',
      algorithmVersion: '1',
    });
    expect(decodeVideoAnalyticsFrame(encodeVideoAnalyticsFrame(wire)).objects).toHaveLength(2);
  });

  it('refuses a 0..1 reading of a document that uses negative coordinates', () => {
    const xml = doc(
      object(1, 'left="-0.5" top="0.5" right="0" bottom="-0.5"', '<tt:Type Likelihood="0.9">Human</tt:Type>'),
    );
    expect(() => parseOnvifMetadata(xml, { frameWidth: 10, frameHeight: 10, normalisation: 'unit' })).toThrow(
      expect.objectContaining({ code: 'CS_ERR_ONVIF_METADATA' }),
    );
  });

  it('skips objects without a box and keeps an empty frame', () => {
    const xml = doc('<tt:Object ObjectId="3"><tt:Appearance><tt:Class/></tt:Appearance></tt:Object>');
    expect(parseOnvifMetadata(xml, { frameWidth: 10, frameHeight: 10 })[0]?.objects).toEqual([]);
  });

  it('answers garbage with CS_ERR_ONVIF_METADATA, never a crash', () => {
    const garbage: Array<string | Uint8Array> = [
      '',
      'hello',
      '<tt:MetadataStream><tt:VideoAnalytics><tt:Frame',
      '<other/>',
      doc('', 'yesterday'),
      doc(object(1, 'left="a" top="0" right="0" bottom="0"', '')),
      doc(object(1, 'left="0" top="0" right="0.5" bottom="0.5"', '<tt:Type Likelihood="7">Human</tt:Type>')),
      doc(object(-4, 'left="0" top="0" right="0.5" bottom="0.5"', '')),
      doc(object(1, 'left="0" top="0" right="3" bottom="0.5"', '')),
      new Uint8Array([0xff, 0x00, 0x3c, 0x3e, 0x12]),
      `<!DOCTYPE d [<!ENTITY x "xxxxxxxx">]>${doc('')}&x;`,
    ];
    for (const g of garbage) {
      expect(
        () => parseOnvifMetadata(g, { frameWidth: 640, frameHeight: 480 }),
        String(g).slice(0, 60),
      ).toThrow(expect.objectContaining({ code: 'CS_ERR_ONVIF_METADATA' }));
    }
    expect(() => parseOnvifMetadata(doc(''), { frameWidth: 0, frameHeight: 480 })).toThrow(
      expect.objectContaining({ code: 'CS_ERR_ONVIF_METADATA' }),
    );
    expect(() =>
      parseOnvifMetadata(doc('x'.repeat(2000)), { frameWidth: 640, frameHeight: 480, maxBytes: 1000 }),
    ).toThrow(expect.objectContaining({ code: 'CS_ERR_ONVIF_METADATA' }));
  });
});
