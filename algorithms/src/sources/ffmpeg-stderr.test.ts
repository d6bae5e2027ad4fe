import { describe, expect, it } from 'vitest';
import { SOURCE_DECODE, SOURCE_UNREACHABLE } from './errors.ts';
import { classifyFfmpegFailure, FfmpegStderr, type FrameSize } from './ffmpeg-stderr.ts';

// Verbatim from ffmpeg 4.1 (the @ffmpeg-installer binary): raw RGB file in, scaled rawvideo out.
const STDERR = `[rawvideo @ 0x418c5d00] Estimating duration from bitrate, this may be inaccurate
Input #0, rawvideo, from 'in.rgb':
  Duration: 00:00:01.00, start: 0.000000, bitrate: 18432 kb/s
    Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24, 320x240, 18432 kb/s, 10 tbr, 10 tbn, 10 tbc
Stream mapping:
  Stream #0:0 -> #0:0 (rawvideo (native) -> rawvideo (native))
Output #0, rawvideo, to 'pipe:1':
  Metadata:
    encoder         : Lavf58.24.100
    Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24, 160x120, q=2-31, 2304 kb/s, 5 fps, 5 tbn, 5 tbc
    Metadata:
      encoder         : Lavc58.42.100 rawvideo
`;

describe('FfmpegStderr', () => {
  it('reads the output frame size, not the input one, across chunk boundaries', () => {
    const sizes: FrameSize[] = [];
    const stderr = new FfmpegStderr(5, (s) => sizes.push(s));
    for (let i = 0; i < STDERR.length; i += 7) stderr.push(STDERR.slice(i, i + 7));
    expect(sizes).toEqual([{ width: 160, height: 120 }]);
    expect(stderr.tail()).toHaveLength(5);
    expect(stderr.tail().at(-1)).toContain('encoder         : Lavc58');
  });

  it('splits progress lines on carriage returns and redacts passwords', () => {
    const stderr = new FfmpegStderr(3, () => {});
    stderr.push(
      'frame=1\rframe=2\r\n[tcp] Connection to rtsp://u:pw@10.0.0.9/x failed: Connection refused\nlast',
    );
    expect(stderr.tail()).toEqual([
      'frame=2',
      '[tcp] Connection to rtsp://u:***@10.0.0.9/x failed: Connection refused',
      'last',
    ]);
  });
});

describe('classifyFfmpegFailure', () => {
  it('tells unreachable inputs from undecodable ones by the newest telling line', () => {
    expect(classifyFfmpegFailure(['http://10.0.0.9/x: Server returned 404 Not Found'], false)).toBe(
      SOURCE_UNREACHABLE,
    );
    expect(
      classifyFfmpegFailure(
        ['moov atom not found', 'x.mp4: Invalid data found when processing input'],
        false,
      ),
    ).toBe(SOURCE_DECODE);
    expect(classifyFfmpegFailure([], true)).toBe(SOURCE_UNREACHABLE);
    expect(classifyFfmpegFailure([], false)).toBe(SOURCE_DECODE);
  });
});
