import type { AssignmentsDocument } from '@citysense/protocol';
import { CitysenseError } from '@citysense/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ASSIGNMENTS_INVALID, ASSIGNMENTS_UNAVAILABLE } from './errors.ts';
import { HubClient } from './hub-client.ts';
import { TestAssignmentsHub } from './test-hub.ts';

describe('hub client', () => {
  const hub = new TestAssignmentsHub();
  const signal = new AbortController().signal;
  let client: HubClient;
  beforeAll(async () => {
    await hub.start();
    client = new HubClient({ credentials: { hubUrl: hub.url, nodeId: hub.nodeId, password: hub.password } });
  });
  afterEach(() => hub.reset());
  afterAll(() => hub.close());

  const valid = (): AssignmentsDocument => ({
    nodeId: hub.nodeId,
    revision: 3,
    trustedKeys: ['key'],
    assignments: [
      {
        deploymentId: 'd1',
        algorithmId: 'yolox-nano',
        version: '1.0.0',
        sha256: 'a'.repeat(64),
        bytes: 10,
        packagePath: '/v1/algorithms/yolox-nano/versions/1.0.0/package',
        sources: [{ id: 'cam-1', url: '/data/cam-1', fps: 2 }],
      },
    ],
  });

  async function failure(): Promise<CitysenseError> {
    const err = await client.getAssignments(signal).then(
      () => null,
      (e: unknown) => e,
    );
    if (!(err instanceof CitysenseError)) throw new Error('expected a CitysenseError');
    return err;
  }

  it('reads a document with node credentials and fills in defaults', async () => {
    const doc = valid();
    const source: { fps?: number } = doc.assignments[0]?.sources[0] ?? {};
    delete source.fps;
    hub.document = doc;
    const got = await client.getAssignments(signal);
    expect(got?.revision).toBe(3);
    expect(got?.assignments[0]?.sources[0]?.fps).toBe(2);
  });

  it('answers null for a hub without the assignments route', async () => {
    expect(await client.getAssignments(signal)).toBeNull();
  });

  it('refuses documents that break the contract, saying where', async () => {
    hub.document = { ...valid(), revision: -1 };
    expect(await failure()).toMatchObject({
      code: ASSIGNMENTS_INVALID,
      message: expect.stringMatching(/revision/),
    });
    const twice = valid();
    twice.assignments.push({ ...(twice.assignments[0] as AssignmentsDocument['assignments'][number]) });
    hub.document = twice;
    expect(await failure()).toMatchObject({
      code: ASSIGNMENTS_INVALID,
      message: expect.stringMatching(/twice/),
    });
    hub.document = { ...valid(), nodeId: 'someone-else' };
    expect(await failure()).toMatchObject({ code: ASSIGNMENTS_INVALID });
  });

  it('reports a hub it cannot authenticate to as unavailable', async () => {
    const stranger = new HubClient({
      credentials: { hubUrl: hub.url, nodeId: hub.nodeId, password: 'wrong' },
    });
    const err = await stranger.getAssignments(signal).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ASSIGNMENTS_UNAVAILABLE, message: expect.stringMatching(/401/) });
  });
});
