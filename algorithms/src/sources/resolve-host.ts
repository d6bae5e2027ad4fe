/**
 * Resolves an input URL's host name in Node before ffmpeg sees it. The static ffmpeg of
 * `@ffmpeg-installer` links glibc statically and crashes (SIGSEGV) in getaddrinfo on
 * many hosts, even for `localhost`; Node's resolver also gives a clear error.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { errorMessage } from '@citysense/protocol';
import { SOURCE_UNREACHABLE, sourceError } from './errors.ts';
import { redactCredentials, schemeOf } from './spec.ts';

/** The input to hand ffmpeg, and the HTTP headers that keep the original host. */
export interface ResolvedInput {
  input: string;
  httpHeaders?: string | undefined;
}

/** Resolves a host name with Node's resolver, e.g. `dns.promises.lookup`. */
export type HostLookup = (host: string) => Promise<{ address: string; family: number }>;

// scheme://[userinfo@]host[:port]rest — host may be a bracketed IPv6 literal.
const AUTHORITY = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*@)?(\[[^\]]*\]|[^/?#:]*)(:\d+)?(.*)$/is;

// TLS needs the name for SNI and certificates, so those inputs keep it (and need an ffmpeg
// that can resolve: set CITYSENSE_FFMPEG to a dynamically linked build if the bundled one crashes).
const KEEP_NAME = new Set(['https', 'rtsps', 'rtmps', 'tls', 'file']);

/** `input` with its host name replaced by an address, or unchanged for paths, IPs and TLS URLs. */
export async function resolveInputHost(
  input: string,
  lookupHost: HostLookup = lookup,
): Promise<ResolvedInput> {
  const scheme = schemeOf(input);
  if (scheme === undefined || KEEP_NAME.has(scheme)) return { input };
  const m = AUTHORITY.exec(input);
  const [, prefix = '', userinfo = '', host = '', port = '', rest = ''] = m ?? [];
  if (!m || host === '' || host.startsWith('[') || isIP(host) !== 0) return { input };
  let address: string;
  let family: number;
  try {
    ({ address, family } = await lookupHost(host));
  } catch (err) {
    throw sourceError(
      SOURCE_UNREACHABLE,
      `cannot resolve host '${host}' of ${redactCredentials(input)}: ${errorMessage(err)}; check the name or use an IP address`,
      { input: redactCredentials(input) },
    );
  }
  const literal = family === 6 ? `[${address}]` : address;
  const resolved = `${prefix}${userinfo}${literal}${port}${rest}`;
  return scheme === 'http'
    ? { input: resolved, httpHeaders: `Host: ${host}${port}\r\n` }
    : { input: resolved };
}
