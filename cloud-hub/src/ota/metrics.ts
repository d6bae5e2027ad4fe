import { Gauge, type MetricsRegistry } from '../http/metrics.ts';
import type { CampaignService } from './campaign-service.ts';

/** `citysense_ota_campaign_nodes{campaign, state}`: target nodes of live campaigns per state. */
export function registerOtaGauges(registry: MetricsRegistry, campaigns: CampaignService): void {
  registry.register(
    new Gauge(
      'citysense_ota_campaign_nodes',
      'Target nodes of running or paused OTA campaigns, per campaign and node state',
      () => campaigns.liveCounts().map((c) => [{ campaign: c.campaignId, state: c.state }, c.count]),
    ),
  );
}
