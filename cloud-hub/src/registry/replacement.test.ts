import { generateEd25519, signEd25519 } from '@citysense/protocol';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../audit/audit-log.ts';
import { connectNode } from '../testing/node-client.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';

type ErrorBody = { code: string; message: string };
type TokenReply = { id: string; token: string; replacesNode: string; issuedBy: { username: string } | null };
type EnrollReply = { nodeId: string; replaced: boolean; mqtt: { username: string; password: string } };
type NodeView = {
  id: string;
  hardware: Record<string, unknown>;
  agentVersion: string | null;
  replacedAt: string | null;
};
type NodeEvent = {
  kind: string;
  actor: { username: string | null } | null;
  details: {
    previous?: { hardware: Record<string, unknown> };
    current: { hardware: Record<string, unknown> };
  };
};

const PASSWORD = 'a long enough secret';

/** `promise`, or a failure naming `what` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
const OLD_BOX = { arch: 'arm', cpuModel: 'Cortex-A53', cpuCores: 4, executionProviders: ['cpu'] };
const NEW_BOX = { arch: 'arm64', cpuModel: 'RK3588', cpuCores: 8, executionProviders: ['rknpu', 'cpu'] };

/**
 * Box replacement against a real hub (embedded Aedes and TimescaleDB on port 0):
 * a replacement token lets a new box take over a node id with new credentials,
 * and the old box's credentials stop working at once, on MQTT and on HTTP.
 */
describe('box replacement', () => {
  let t: TestHub;
  const clients: MqttClient[] = [];
  const enrollBody = (token: string, extra: Record<string, unknown> = {}) => {
    const keys = generateEd25519();
    return {
      token,
      publicKey: keys.publicKey,
      signature: signEd25519(keys.privateKey, `${token}\n${keys.publicKey}`),
      ...extra,
    };
  };
  const enroll = (token: string, extra: Record<string, unknown> = {}) =>
    t.api<EnrollReply & ErrorBody>('POST', '/v1/nodes/enroll', enrollBody(token, extra), null);
  const asNode = async (nodeId: string, password: string, path: string) => {
    const res = await fetch(`${t.httpUrl}${path}`, {
      headers: { authorization: `Basic ${Buffer.from(`${nodeId}:${password}`).toString('base64')}` },
    });
    return { status: res.status, body: (await res.json()) as ErrorBody };
  };
  const connect = async (nodeId: string, password: string) => {
    const c = await connectNode(t.mqttUrl, nodeId, password);
    clients.push(c);
    return c;
  };
  const login = async (username: string) => {
    const res = await t.api<{ token: string }>(
      'POST',
      '/v1/auth/login',
      { username, password: PASSWORD },
      null,
    );
    if (res.status !== 200) throw new Error(`login ${username}: ${JSON.stringify(res.body)}`);
    return res.body.token;
  };
  const createUser = async (username: string, agencyId: string, role: string) => {
    const res = await t.api('POST', '/v1/users', {
      username,
      displayName: username,
      agencyId,
      password: PASSWORD,
      roles: [{ role }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return login(username);
  };
  /** Enrols `nodeId` as the old box, member of `agencyId`. */
  const enrollOldBox = async (nodeId: string, agencyId = 'haidian') => {
    const created = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: nodeId });
    const res = await enroll(created.body.token, { hardware: OLD_BOX, agentVersion: '0.9.0' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await t.hub.db.query('INSERT INTO agency_nodes (node_id, agency_id) VALUES ($1, $2)', [nodeId, agencyId]);
    return res.body;
  };

  let engineer: string;
  let otherEngineer: string;
  let operator: string;

  beforeAll(async () => {
    t = await startTestHub();
    for (const id of ['haidian', 'chaoyang'])
      expect((await t.api('PUT', `/v1/agencies/${id}`, { name: id, kind: 'district' })).status).toBe(201);
    engineer = await createUser('li-engineer', 'haidian', 'field-engineer');
    otherEngineer = await createUser('zhao-engineer', 'chaoyang', 'field-engineer');
    operator = await createUser('wu-operator', 'haidian', 'agency-operator');
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });
  afterAll(async () => t?.stop());

  it('lets a new box take over the node id; the old box is kicked off MQTT, refused on reconnect and on HTTP', async () => {
    const old = await enrollOldBox('pole-B01');
    const oldSession = await connect('pole-B01', old.mqtt.password);
    expect((await asNode('pole-B01', old.mqtt.password, '/v1/nodes/pole-B01/assignments')).status).toBe(200);

    const issued = await t.api<TokenReply>(
      'POST',
      '/v1/nodes/pole-B01/replacement-tokens',
      { ttl: '2h' },
      engineer,
    );
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    expect(issued.body).toMatchObject({ replacesNode: 'pole-B01', issuedBy: { username: 'li-engineer' } });
    // Issuing alone changes nothing: the old box keeps working until the new one enrols.
    expect(oldSession.connected).toBe(true);

    const kicked = new Promise<void>((resolve) => oldSession.once('close', () => resolve()));
    const taken = await enroll(issued.body.token, { hardware: NEW_BOX, agentVersion: '1.0.0' });
    expect(taken.status, JSON.stringify(taken.body)).toBe(201);
    expect(taken.body).toMatchObject({ nodeId: 'pole-B01', replaced: true, mqtt: { username: 'pole-B01' } });
    expect(taken.body.mqtt.password).not.toBe(old.mqtt.password);

    await within(kicked, 10_000, 'the old box session is closed');
    expect(oldSession.connected).toBe(false);
    await expect(connectNode(t.mqttUrl, 'pole-B01', old.mqtt.password)).rejects.toThrow(
      /bad username or password/i,
    );
    const refused = await asNode('pole-B01', old.mqtt.password, '/v1/nodes/pole-B01/assignments');
    expect([refused.status, refused.body.code]).toEqual([401, 'CS_ERR_AUTH_INVALID']);

    const newSession = await connect('pole-B01', taken.body.mqtt.password);
    expect(newSession.connected).toBe(true);
    expect(
      (await asNode('pole-B01', taken.body.mqtt.password, '/v1/nodes/pole-B01/assignments')).status,
    ).toBe(200);

    // Same node record, new hardware facts; the swap is in the node's history and in the audit log.
    const node = await t.api<NodeView>('GET', '/v1/nodes/pole-B01');
    expect(node.body.hardware).toMatchObject(NEW_BOX);
    expect(node.body.agentVersion).toBe('1.0.0');
    expect(node.body.replacedAt).not.toBeNull();
    const nodes = await t.api<NodeView[]>('GET', '/v1/nodes');
    expect(nodes.body.filter((n) => n.id === 'pole-B01')).toHaveLength(1);

    const events = await t.api<NodeEvent[]>('GET', '/v1/nodes/pole-B01/events', undefined, engineer);
    expect(events.body.map((e) => e.kind)).toEqual(['enrolled', 'replaced']);
    const swap = events.body[1];
    expect(swap?.actor?.username).toBe('li-engineer');
    expect(swap?.details.previous?.hardware).toMatchObject(OLD_BOX);
    expect(swap?.details.current.hardware).toMatchObject(NEW_BOX);

    const audit = await t.api<{ entries: AuditEntry[] }>(
      'GET',
      '/v1/audit?action=node.replace&target=pole-B01',
    );
    expect(audit.body.entries).toHaveLength(1);
    expect(audit.body.entries[0]).toMatchObject({
      actor: { kind: 'user', username: 'li-engineer', agencyId: 'haidian' },
      before: { hardware: OLD_BOX },
      after: { hardware: NEW_BOX, tokenId: issued.body.id },
    });
  });

  it('refuses used, expired, unknown and other-node tokens with codes, and replacing an unknown or deregistered node', async () => {
    await enrollOldBox('pole-B02');
    const issue = (node: string, body: unknown = {}, token: string = engineer) =>
      t.api<TokenReply & ErrorBody>('POST', `/v1/nodes/${node}/replacement-tokens`, body, token);

    const issued = await issue('pole-B02');
    // A box that expects another node id is refused, and the token survives for the right box.
    const mismatch = await enroll(issued.body.token, { nodeId: 'pole-B01' });
    expect([mismatch.status, mismatch.body.code]).toEqual([409, 'CS_ERR_TOKEN_NODE_MISMATCH']);
    const right = await enroll(issued.body.token, { nodeId: 'pole-B02' });
    expect([right.status, right.body.nodeId]).toEqual([201, 'pole-B02']);
    const reused = await enroll(issued.body.token);
    expect([reused.status, reused.body.code]).toEqual([409, 'CS_ERR_TOKEN_USED']);
    expect(reused.body.message).toContain('citysense token replace pole-B02');
    // The box that won keeps working: the refused reuse took nothing over.
    await connect('pole-B02', right.body.mqtt.password);

    const short = await issue('pole-B02', { ttl: '1s' });
    await new Promise((r) => setTimeout(r, 1100));
    const expired = await enroll(short.body.token);
    expect([expired.status, expired.body.code]).toEqual([401, 'CS_ERR_TOKEN_EXPIRED']);

    const unknownToken = await enroll('cst_this-token-was-never-issued');
    expect([unknownToken.status, unknownToken.body.code]).toEqual([401, 'CS_ERR_TOKEN_UNKNOWN']);

    const badTtl = await issue('pole-B02', { ttl: 'forever' });
    expect([badTtl.status, badTtl.body.code]).toEqual([400, 'CS_ERR_DURATION_INVALID']);

    const unknownNode = await issue('pole-nobody', {}, t.adminToken);
    expect([unknownNode.status, unknownNode.body.code]).toEqual([404, 'CS_ERR_NODE_UNKNOWN']);

    // A token issued before the node was deregistered cannot bring it back.
    const pending = await issue('pole-B02');
    expect((await t.api('DELETE', '/v1/nodes/pole-B02')).status).toBe(204);
    const revived = await enroll(pending.body.token);
    expect([revived.status, revived.body.code]).toEqual([404, 'CS_ERR_NODE_UNKNOWN']);
    const afterDeregistration = await issue('pole-B02', {}, t.adminToken);
    expect([afterDeregistration.status, afterDeregistration.body.code]).toEqual([404, 'CS_ERR_NODE_UNKNOWN']);
    const node = await t.api<{ status: string }>('GET', '/v1/nodes/pole-B02');
    expect(node.body.status).toBe('deregistered');
  });

  it('lets only field engineers of the node agency and platform admins issue replacement tokens', async () => {
    await enrollOldBox('pole-B03', 'haidian');
    const issue = (token: string) =>
      t.api<ErrorBody>('POST', '/v1/nodes/pole-B03/replacement-tokens', {}, token);
    const foreign = await issue(otherEngineer);
    expect([foreign.status, foreign.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
    const wrongRole = await issue(operator);
    expect([wrongRole.status, wrongRole.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
    const anonymous = await t.api<ErrorBody>('POST', '/v1/nodes/pole-B03/replacement-tokens', {}, null);
    expect([anonymous.status, anonymous.body.code]).toEqual([401, 'CS_ERR_AUTH_REQUIRED']);
    expect((await issue(engineer)).status).toBe(201);
    expect((await issue(t.adminToken)).status).toBe(201);
    const refusals = await t.api<{ entries: AuditEntry[] }>(
      'GET',
      '/v1/audit?action=auth.refused&actor=zhao-engineer',
    );
    expect(refusals.body.entries.length).toBeGreaterThan(0);
  });
});
