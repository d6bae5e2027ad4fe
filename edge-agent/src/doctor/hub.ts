import { errorMessage } from '@citysense/protocol';
import { type CheckContext, type CheckResult, result } from './report.ts';

/** Clock skew beyond which TLS, token expiry and reading timestamps start to go wrong. */
const SKEW_WARN_MS = 2_000;
const SKEW_FAIL_MS = 30_000;

/**
 * Hub reachability (GET `{hubUrl}/health`) and clock skew against the hub's `Date`
 * header (RFC 9110 §6.6.1: second resolution, so skew under ~1 s is noise).
 */
export async function checkHub(ctx: CheckContext): Promise<CheckResult[]> {
  const url = new URL('/health', ctx.config.hubUrl).toString();
  const sentAt = Date.now();
  let res: Response;
  try {
    res = await fetch(url, { signal: ctx.signal });
    await res.arrayBuffer();
  } catch (err) {
    return [
      result(
        'hub',
        'fail',
        `GET ${url} failed (${errorMessage((err as { cause?: unknown }).cause ?? err)}): check hubUrl in the agent config, DNS, routing and firewall towards the hub`,
      ),
      result('clock', 'warn', 'not measured: the hub is unreachable'),
    ];
  }
  const receivedAt = Date.now();
  const hub = res.ok
    ? result('hub', 'ok', `${url} answered ${res.status} in ${receivedAt - sentAt} ms`)
    : result(
        'hub',
        'fail',
        `${url} answered ${res.status}: check that hubUrl points at a citysense hub and that the hub is healthy`,
      );
  return [hub, clockFrom(res.headers.get('date'), sentAt, receivedAt)];
}

function clockFrom(dateHeader: string | null, sentAt: number, receivedAt: number): CheckResult {
  const hubTime = dateHeader ? Date.parse(dateHeader) : Number.NaN;
  if (!Number.isFinite(hubTime))
    return result('clock', 'warn', 'the hub sent no usable Date header: clock skew not measured');
  // The header is truncated to the second: compare against the midpoint of the round trip.
  const skew = (sentAt + receivedAt) / 2 - hubTime;
  const abs = Math.abs(skew);
  const text = `${skew >= 0 ? 'ahead of' : 'behind'} the hub by ${(abs / 1000).toFixed(1)} s`;
  if (abs >= SKEW_FAIL_MS)
    return result('clock', 'fail', `${text}: enable NTP (chrony/systemd-timesyncd) on the gateway`);
  if (abs >= SKEW_WARN_MS)
    return result('clock', 'warn', `${text}: check that NTP is running and synchronised`);
  return result('clock', 'ok', text);
}
