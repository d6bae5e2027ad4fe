import { describe, expect, it } from 'vitest';
import { ffmpegArgs } from './ffmpeg-args.ts';
import { resolveInputHost } from './resolve-host.ts';
import { extensionOf, isLiveByDefault, redactCredentials, schemeOf } from './spec.ts';

describe('spec helpers', () => {
  it('reads schemes, extensions and liveness', () => {
    expect(schemeOf('RTSP://cam/1')).toBe('rtsp');
    expect(schemeOf('/data/clip.mp4')).toBeUndefined();
    expect(extensionOf('http://cam/video.MP4?token=1')).toBe('.mp4');
    expect(isLiveByDefault('rtmp://x/live')).toBe(true);
    expect(isLiveByDefault('/data/clip.mp4')).toBe(false);
  });

  it('redacts passwords but keeps user names', () => {
    expect(redactCredentials('rtsp://admin:p@ss:w0rd@10.0.0.1:554/s')).toBe(
      'rtsp://admin:***@10.0.0.1:554/s',
    );
    expect(redactCredentials('rtsp://10.0.0.1/s')).toBe('rtsp://10.0.0.1/s');
  });
});

describe('ffmpegArgs', () => {
  it('uses TCP and a socket timeout for RTSP, an IO timeout elsewhere, and scales keeping aspect', () => {
    const rtsp = ffmpegArgs({
      input: 'rtsp://cam/1',
      fps: 5,
      maxWidth: 640,
      ioTimeoutMs: 3000,
      realtime: false,
    });
    expect(rtsp.join(' ')).toContain('-rtsp_transport tcp -stimeout 3000000 -i rtsp://cam/1');
    expect(rtsp).toContain("fps=5,scale=w='min(iw,640)':h=-1");
    expect(rtsp.slice(-5)).toEqual(['-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
    const file = ffmpegArgs({ input: '/x.mp4', ioTimeoutMs: 1000, realtime: true });
    expect(file.join(' ')).toContain('-rw_timeout 1000000 -re -i /x.mp4');
    expect(file).not.toContain('-vf');
  });

  it('times live MJPEG over HTTP by arrival, and leaves timestamped containers their own clock', () => {
    const args = (input: string, live: boolean) =>
      ffmpegArgs({ input, ioTimeoutMs: 1000, realtime: false, live });
    expect(args('http://cam/video.mjpg', true)).toContain('-use_wallclock_as_timestamps');
    expect(args('http://cam/cgi-bin/mjpg/video.cgi?channel=1', true)).toContain(
      '-use_wallclock_as_timestamps',
    );
    expect(args('http://cam/live.ts', true)).not.toContain('-use_wallclock_as_timestamps');
    expect(args('http://server/clip.mjpg', false)).not.toContain('-use_wallclock_as_timestamps');
    expect(args('rtsp://cam/1', true)).not.toContain('-use_wallclock_as_timestamps');
  });
});

describe('resolveInputHost', () => {
  const lookup = async (host: string) => {
    if (host === 'cam.local') return { address: '10.1.2.3', family: 4 };
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };

  it('swaps host names for addresses and keeps the HTTP Host header', async () => {
    expect(await resolveInputHost('rtsp://u:p@cam.local:554/s?x=1', lookup)).toEqual({
      input: 'rtsp://u:p@10.1.2.3:554/s?x=1',
    });
    expect(await resolveInputHost('http://cam.local:8080/v.ts', lookup)).toEqual({
      input: 'http://10.1.2.3:8080/v.ts',
      httpHeaders: 'Host: cam.local:8080\r\n',
    });
  });

  it('leaves paths, addresses and TLS URLs alone', async () => {
    for (const input of [
      '/data/a.mp4',
      'rtsp://10.0.0.1/s',
      'rtsp://[::1]:554/s',
      'https://cam.local/v.m3u8',
    ]) {
      expect(await resolveInputHost(input, lookup)).toEqual({ input });
    }
  });

  it('reports an unknown host as unreachable without the password', async () => {
    const err = await resolveInputHost('rtsp://u:secret@nope.invalid/s', lookup).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CS_ERR_SOURCE_UNREACHABLE' });
    expect((err as Error).message).not.toContain('secret');
  });
});
