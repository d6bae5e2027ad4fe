import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@citysense/protocol';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** console/dist of this install, next to cloud-hub/. */
export const DEFAULT_CONSOLE_DIST = fileURLToPath(new URL('../../../console/dist', import.meta.url));

/** Paths that belong to the API and tools, never to the console's fallback. */
const NOT_CONSOLE = ['/v1', '/docs', '/health', '/metrics', '/mqtt', '/assets'];

/** Options of the console's static serving. */
export interface ConsoleStaticOptions {
  /** Directory of the built console (index.html and assets/). */
  distDir: string;
  /** Extra origin allowed for images (the basemap tiles), from the tile URL. */
  tileOrigin?: string | undefined;
  logger: Logger;
  /** Origins of the media relay (HTTP-FLV): the video page's player fetches from them. */
  mediaOrigins?: () => string[];
}

const NOT_BUILT = (distDir: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>citysense console not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1f2937}
code{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><h1>The web console is not built</h1>
<p>The hub serves the console from <code>${distDir.replace(/[<>&]/g, '')}</code>, which has no
<code>index.html</code>. <code>npm install</code> builds it (the root <code>prepare</code> script); to build it by hand:</p>
<pre><code>npm run build -w console</code></pre>
<p>then reload this page. The API is unaffected: see <a href="/docs">/docs</a>.</p>
<p lang="zh-CN">Web 控制台尚未构建：请运行 <code>npm run build -w console</code> 后刷新本页。</p>
</body></html>`;

/**
 * Serves the built web console: `/assets/*` (content-hashed names, cached for a year,
 * immutable), `/` and any other page path (SPA fallback: the console routes in the
 * URL hash, but deep links and bookmarks of plain paths land on it too) with
 * index.html revalidated on every load. Without a build, `/` says how to make one.
 */
export async function consoleStatic(app: FastifyInstance, options: ConsoleStaticOptions): Promise<void> {
  const { distDir } = options;
  const indexFile = join(distDir, 'index.html');
  if (!existsSync(indexFile))
    options.logger.warn(
      { distDir },
      'web console is not built: / explains how (npm run build -w console); the API is unaffected',
    );
  await app.register(fastifyStatic, {
    root: join(distDir, 'assets'),
    prefix: '/assets/',
    decorateReply: false,
    index: false,
    maxAge: '365d',
    immutable: true,
    // The build writes .br and .gz beside each asset (console/vite.config.ts).
    preCompressed: true,
  });
  const cspWith = (media: string) =>
    [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self' 'unsafe-inline'",
      `img-src 'self' data: blob:${options.tileOrigin ? ` ${options.tileOrigin}` : ''}`,
      `media-src 'self' blob:${media}`,
      `connect-src 'self'${media}`,
      "frame-ancestors 'none'",
      "base-uri 'self'",
    ].join('; ');
  const mediaList = () => {
    const origins = options.mediaOrigins?.() ?? [];
    return origins.length ? ` ${origins.join(' ')}` : '';
  };

  const page = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '/';
    if (NOT_CONSOLE.some((p) => path === p || path.startsWith(`${p}/`)) || !acceptsHtml(request))
      return reply.callNotFound();
    let html: string;
    try {
      html = await readFile(indexFile, 'utf8');
    } catch {
      return reply
        .status(503)
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(NOT_BUILT(distDir));
    }
    return reply
      .header('cache-control', 'no-cache')
      .header('content-security-policy', cspWith(mediaList()))
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .type('text/html; charset=utf-8')
      .send(html);
  };
  app.get('/', { schema: { hide: true } }, page);
  app.get('/*', { schema: { hide: true } }, page);
}

function acceptsHtml(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '*/*';
  return accept.includes('text/html') || accept.includes('*/*');
}

/** The origin of a tile URL template, for the console's Content-Security-Policy. */
export function tileOriginOf(tileUrl: string | undefined): string | undefined {
  if (!tileUrl || tileUrl.startsWith('/')) return undefined;
  try {
    return new URL(tileUrl.replace(/\{[^}]+\}/g, '0')).origin;
  } catch {
    return undefined;
  }
}
