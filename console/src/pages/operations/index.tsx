/**
 * Platform operations (`#/operations/<tab>`): tiered alarms (acknowledge, clear, live),
 * alarm rules, OTA campaigns with per-node progress, audit log search and the ledger
 * chain verification. One tab per sub-route so that a link opens the right one.
 */
import { href, useRoute } from '../../router.ts';
import { AlarmsTab } from './alarms.tsx';
import { AuditTab } from './audit.tsx';
import { LedgerTab } from './ledger.tsx';
import { m } from './messages.ts';
import { OtaTab } from './ota.tsx';
import { RulesTab } from './rules.tsx';
import '../fleet/fleet.css';
import './operations.css';

const TABS = ['alarms', 'rules', 'ota', 'audit', 'ledger'] as const;
type Tab = (typeof TABS)[number];

/** The operations page. */
export default function OperationsPage() {
  const route = useRoute();
  const tab: Tab = (TABS as readonly string[]).includes(route.rest[0] ?? '')
    ? (route.rest[0] as Tab)
    : 'alarms';
  return (
    <section class="fleet-page ops-page" aria-labelledby="ops-title">
      <header class="fleet-head">
        <div>
          <h1 id="ops-title">{m('title')}</h1>
          <p class="muted">{m('subtitle')}</p>
        </div>
      </header>
      <nav class="tabs" aria-label={m('tabs')}>
        {TABS.map((t) => (
          <a
            key={t}
            href={`${href('operations')}/${t}`}
            data-tab={t}
            aria-current={t === tab ? 'page' : undefined}
          >
            {m(`tab.${t}`)}
          </a>
        ))}
      </nav>
      {tab === 'alarms' ? <AlarmsTab /> : null}
      {tab === 'rules' ? <RulesTab /> : null}
      {tab === 'ota' ? <OtaTab /> : null}
      {tab === 'audit' ? <AuditTab /> : null}
      {tab === 'ledger' ? <LedgerTab /> : null}
    </section>
  );
}
