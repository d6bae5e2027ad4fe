/** Platform health in the header: nodes online, alarms open, ingest rate, live state. */
import { formatNumber, formatTime, t } from '../i18n.ts';
import { health, liveConnected, liveError } from '../live.ts';
import { useValue } from '../signal.ts';

/** The header's health figures, updated over the live stream. */
export function HealthBar() {
  const h = useValue(health);
  const live = useValue(liveConnected);
  const why = useValue(liveError);
  const open = h?.alarms.open ?? 0;
  const critical = (h?.alarms.bySeverity.critical ?? 0) + (h?.alarms.bySeverity.major ?? 0);
  return (
    <ul class="health" aria-label="platform health" title={h ? formatTime(h.at) : undefined}>
      <li class="health-item" data-testid="nodes-online">
        <span class="health-label">{t('header.nodesOnline')}</span>
        <span class="health-value">
          {h ? `${formatNumber(h.nodes.online)} / ${formatNumber(h.nodes.total)}` : '…'}
        </span>
      </li>
      <li class={`health-item${critical > 0 ? ' bad' : open > 0 ? ' warn' : ''}`} data-testid="alarms-open">
        <span class="health-label">{t('header.alarmsOpen')}</span>
        <span class="health-value">{h ? formatNumber(open) : '…'}</span>
      </li>
      <li class="health-item" data-testid="ingest-rate">
        <span class="health-label">{t('header.ingest')}</span>
        <span class="health-value">
          {h ? t('header.perSecond', { n: formatNumber(h.ingest.readingsPerSecond, 1) }) : '…'}
        </span>
      </li>
      <li
        class={`live-dot${live ? ' on' : ''}`}
        title={live ? t('header.live') : `${t('header.offline')} ${why ?? ''}`}
      >
        <span aria-hidden="true" />
        <span class="sr-only">{live ? t('header.live') : t('header.offline')}</span>
      </li>
    </ul>
  );
}
