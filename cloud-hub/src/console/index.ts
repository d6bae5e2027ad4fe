/**
 * The web console's side of the hub: the built single-page app at `/`, platform
 * health, the console's config and the live event stream. The app itself is in
 * `console/` at the top of the repository.
 */
import type { Logger } from '@citysense/protocol';
import type { FastifyInstance } from 'fastify';
import type { HubConfig } from '../config.ts';
import { LiveFeed, type LiveFeedSources } from './live-feed.ts';
import { consoleRoutes } from './routes.ts';
import { consoleStatic, DEFAULT_CONSOLE_DIST, tileOriginOf } from './static.ts';

export { type HealthSummary, LiveFeed, type LiveFeedSources } from './live-feed.ts';

/** What `mountConsole` needs from the hub. */
export interface ConsoleMountOptions {
  config: HubConfig['console'];
  hubId: string;
  version: string;
  sources: LiveFeedSources;
  logger: Logger;
  /** Origins of the media relay (HTTP-FLV), allowed to the console's live video; read per page load. */
  mediaOrigins?: () => string[];
}

/** Registers the console's routes and static files on `app`; returns the started live feed. */
export async function mountConsole(app: FastifyInstance, o: ConsoleMountOptions): Promise<LiveFeed> {
  const feed = new LiveFeed({ sources: o.sources, logger: o.logger });
  await feed.start();
  await consoleRoutes(app, {
    feed,
    hubId: o.hubId,
    version: o.version,
    tileUrl: o.config.tileUrl,
    tileAttribution: o.config.tileAttribution,
  });
  await consoleStatic(app, {
    distDir: o.config.distDir ?? DEFAULT_CONSOLE_DIST,
    tileOrigin: tileOriginOf(o.config.tileUrl),
    logger: o.logger,
    ...(o.mediaOrigins ? { mediaOrigins: o.mediaOrigins } : {}),
  });
  return feed;
}
