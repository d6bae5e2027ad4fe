import { errorMessage } from '@citysense/protocol';
import { connectAsync } from 'mqtt';
import { type CheckContext, type CheckResult, result } from './report.ts';

/**
 * Broker auth: connects to the MQTT URL of the stored identity with its credentials and
 * disconnects at once. A refused CONNACK (MQTT 3.1.1 §3.2.2.3, codes 4/5) means the
 * credentials are wrong or revoked. Uses a distinct client id so a running agent's
 * session is not taken over (MQTT 3.1.1 §3.1.4).
 */
export async function checkBroker(ctx: CheckContext): Promise<CheckResult[]> {
  const id = ctx.identity;
  if (!id)
    return [
      result(
        'broker',
        'fail',
        'not enrolled (no identity.json in stateDir): start the agent with an enrolment token',
      ),
    ];
  try {
    const client = await connectAsync(id.mqtt.url, {
      username: id.mqtt.username,
      password: id.mqtt.password,
      clientId: `${id.mqtt.clientId}-doctor-${process.pid}`,
      reconnectPeriod: 0,
      connectTimeout: ctx.timeoutMs,
      protocolVersion: 4,
    });
    await client.endAsync(true);
    return [result('broker', 'ok', `${id.mqtt.url} accepted the node's credentials`)];
  } catch (err) {
    const message = errorMessage(err);
    const refused = /not authori[sz]ed|bad user ?name or password|connection refused: (?:not|bad)/i.test(
      message,
    );
    return [
      result(
        'broker',
        'fail',
        refused
          ? `${id.mqtt.url} refused the node's credentials (${message}): the node may have been revoked or replaced; re-enrol it with a replacement token`
          : `cannot connect to ${id.mqtt.url} (${message}): check that the broker port is reachable from the gateway`,
      ),
    ];
  }
}
