import { connect } from 'node:net';
import { type CheckContext, type CheckResult, result } from './report.ts';

const DEFAULT_PORTS: Record<string, number> = {
  'rtsp:': 554,
  'rtsps:': 322,
  'rtmp:': 1935,
  'http:': 80,
  'https:': 443,
};

/** A network video source found in the config. */
export interface CameraTarget {
  /** Where it was found, e.g. `driver onvif-1 options.url` or `localPackages[0] source cam-1`. */
  where: string;
  url: string;
}

/** Every rtsp/rtmp/http URL in driver options (searched recursively) and in inference.localPackages sources. */
export function cameraTargets(config: CheckContext['config']): CameraTarget[] {
  const out: CameraTarget[] = [];
  const visit = (value: unknown, where: string): void => {
    if (typeof value === 'string') {
      if (/^(rtsps?|rtmp|https?):\/\//i.test(value)) out.push({ where, url: value });
    } else if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) visit(v, `${where}[${i}]`);
    } else if (value && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) visit(v, `${where}.${k}`);
  };
  for (const d of config.drivers) visit(d.options, `driver ${d.id} options`);
  config.inference.localPackages.forEach((p, i) => {
    for (const s of p.sources) visit(s.url, `localPackages[${i}] source ${s.id}`);
  });
  return out;
}

/** TCP connect to host:port of each configured video source; nothing is streamed. */
export async function checkCameras(ctx: CheckContext): Promise<CheckResult[]> {
  return Promise.all(cameraTargets(ctx.config).map((t) => probe(t, ctx)));
}

async function probe(t: CameraTarget, ctx: CheckContext): Promise<CheckResult> {
  let url: URL;
  try {
    url = new URL(t.url);
  } catch {
    return result(`camera:${t.where}`, 'fail', `${t.url} is not a valid URL: fix it in the config`);
  }
  const port = Number(url.port) || DEFAULT_PORTS[url.protocol] || 80;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const name = `camera:${host}:${port}`;
  const shown = `${url.protocol}//${url.host}${url.pathname}`; // without credentials
  try {
    const ms = await tcpConnect(host, port, ctx.signal);
    return result(name, 'ok', `${shown} (${t.where}) accepts TCP in ${ms} ms`);
  } catch (err) {
    return result(
      name,
      'fail',
      `${shown} (${t.where}) unreachable (${(err as Error).message}): check the camera's power, address and port, and the VLAN/firewall between gateway and camera`,
    );
  }
}

function tcpConnect(host: string, port: number, signal: AbortSignal): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const onAbort = () => {
      socket.destroy();
      reject(new Error('timed out'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(Date.now() - started);
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    });
  });
}
