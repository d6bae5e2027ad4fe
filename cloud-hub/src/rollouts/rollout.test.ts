import { describe, expect, it } from 'vitest';
import { hardwareShortfall } from '../deployments/scheduling.ts';
import { canaryCount, DEFAULT_GATE, nextStep, type RolloutNode, type RolloutSnapshot } from './rollout.ts';

const node = (
  nodeId: string,
  state: RolloutNode['state'],
  extra: Partial<RolloutNode> = {},
): RolloutNode => ({
  nodeId,
  canary: false,
  state,
  failed: false,
  acknowledged: false,
  reason: null,
  ...extra,
});
const canary = (nodeId: string, state: RolloutNode['state'], extra: Partial<RolloutNode> = {}) =>
  node(nodeId, state, { canary: true, ...extra });
const snapshot = (nodes: RolloutNode[], extra: Partial<RolloutSnapshot> = {}): RolloutSnapshot => ({
  state: 'canary',
  stage: 'canary',
  stageStartedAt: 0,
  canaryShare: 0.1,
  gate: DEFAULT_GATE,
  nodes,
  ...extra,
});

describe('staged rollout', () => {
  it('sizes the canary as a share of the eligible nodes, rounded up, at least one', () => {
    expect([canaryCount(0.1, 30), canaryCount(0.2, 25), canaryCount(0, 7), canaryCount(1, 4)]).toEqual([
      3, 5, 1, 4,
    ]);
    expect(canaryCount(0.5, 0)).toBe(0);
  });

  it('opens the gate when enough canary nodes are active, then completes when all are', () => {
    const waiting = snapshot([canary('a', 'loading'), canary('b', 'active'), node('c', 'pending')]);
    expect(nextStep(waiting, 1000).kind).toBe('none');
    const half = { ...waiting, gate: { ...DEFAULT_GATE, minActiveShare: 0.5 } };
    expect(nextStep(half, 1000)).toMatchObject({ kind: 'roll', nodeIds: ['c'] });
    const rolling = snapshot([canary('a', 'active'), canary('b', 'active'), node('c', 'downloading')], {
      state: 'rolling',
      stage: 'rolling',
    });
    expect(nextStep(rolling, 1000).kind).toBe('none');
    rolling.nodes[2] = node('c', 'active');
    expect(nextStep(rolling, 1000)).toMatchObject({ kind: 'complete', reason: '3 node(s) active' });
  });

  it('pauses on failures beyond maxFailed and on a gate timeout, naming the nodes', () => {
    const failing = snapshot([
      canary('a', 'rolled-back', { failed: true, reason: 'CS_ERR_X: no model' }),
      node('b', 'pending'),
    ]);
    expect(nextStep(failing, 0)).toMatchObject({
      kind: 'pause',
      reason: expect.stringContaining('a (CS_ERR_X'),
    });
    const tolerated = { ...failing, gate: { ...DEFAULT_GATE, maxFailed: 1, minActiveShare: 0 } };
    expect(nextStep(tolerated, 0)).toMatchObject({ kind: 'roll', nodeIds: ['b'] });
    const slow = snapshot([canary('a', 'downloading'), node('b', 'pending')], { stageStartedAt: 1000 });
    expect(nextStep(slow, 1000 + DEFAULT_GATE.timeoutMs - 1).kind).toBe('none');
    expect(nextStep(slow, 1000 + DEFAULT_GATE.timeoutMs)).toMatchObject({
      kind: 'pause',
      reason: expect.stringContaining('timed out'),
    });
  });

  it('picks a new canary when the old one is gone, and gives up a deployment whose nodes were all taken', () => {
    const acknowledged = snapshot([
      canary('a', 'rolled-back', { acknowledged: true }),
      node('b', 'pending'),
      node('c', 'pending'),
    ]);
    expect(nextStep(acknowledged, 0)).toMatchObject({ kind: 'new-canary', nodeIds: ['b'] });
    const taken = snapshot([node('a', 'superseded'), node('b', 'refused')], { state: 'completed' });
    expect(nextStep(taken, 0).kind).toBe('supersede');
    const restored = snapshot([node('a', 'queued'), node('b', 'superseded')], { state: 'superseded' });
    expect(nextStep(restored, 0).kind).toBe('complete');
    expect(nextStep(snapshot([node('a', 'active')], { state: 'rolled-back' }), 0).kind).toBe('none');
  });
});

describe('scheduling by hardware', () => {
  const requirements = {
    onnxruntime: '1.16',
    minMemoryMiB: 256,
    minCpuCores: 2,
    executionProviders: ['cuda', 'cpu'],
  };

  it('refuses a node only for facts it reported that fall short', () => {
    expect(hardwareShortfall(requirements, {})).toBeNull();
    expect(
      hardwareShortfall(requirements, { memoryBytes: 4 * 2 ** 30, cpuCores: 4, executionProviders: ['cpu'] }),
    ).toBeNull();
    expect(
      hardwareShortfall(requirements, {
        memoryBytes: 128 * 2 ** 20,
        cpuCores: 1,
        executionProviders: ['openvino'],
      }),
    ).toBe(
      'needs 256 MiB memory, has 128 MiB; needs 2 CPU core(s), has 1; needs execution provider cuda or cpu, has openvino',
    );
  });
});
