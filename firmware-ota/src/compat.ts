/** Whether an artifact may install on this node: target, hardware model, updater version. */
import { CitysenseError, type OtaManifest, type OtaTarget } from '@citysense/protocol';
import { OTA_ERRORS } from './errors.ts';

/** What the node knows about itself. */
export interface NodeCompatibility {
  /** The slot store the artifact is meant for. */
  target: OtaTarget;
  /** Hardware model of the gateway (e.g. LPG-3); unknown when absent. */
  hardwareModel?: string | undefined;
  /** CPU architecture (os.arch()); a manifest may name it instead of a model, as the hub's campaign check allows. */
  arch?: string | undefined;
  /** Version of the running agent (the updater). */
  agentVersion: string;
}

/** Throws CS_ERR_OTA_INCOMPATIBLE with the reason when `manifest` cannot install on this node. */
export function assertCompatible(manifest: OtaManifest, node: NodeCompatibility): void {
  const what = `${manifest.name} ${manifest.version}`;
  if (manifest.target !== node.target)
    throw incompatible(`${what} is a ${manifest.target} artifact, this slot store holds ${node.target}`);
  if (manifest.hardware && manifest.hardware.length > 0) {
    const has = [node.hardwareModel, node.arch].filter((h): h is string => typeof h === 'string' && h !== '');
    if (!has.some((h) => manifest.hardware?.includes(h)))
      throw incompatible(
        has.length === 0 || !node.hardwareModel
          ? `${what} is for hardware ${manifest.hardware.join(', ')}; this node is ${has.join(' / ') || 'unknown'} and its model is not configured (ota.hardwareModel)`
          : `${what} is for hardware ${manifest.hardware.join(', ')}, this node is ${has.join(' / ')}`,
      );
  }
  if (manifest.minAgentVersion && compareSemver(node.agentVersion, manifest.minAgentVersion) < 0)
    throw incompatible(
      `${what} needs agent ${manifest.minAgentVersion} or later to install, this agent is ${node.agentVersion}; update the agent first`,
    );
}

/** Semantic version precedence (semver.org §11): -1, 0 or 1. Build metadata is ignored. */
export function compareSemver(a: string, b: string): number {
  const [coreA = '', preA] = splitVersion(a);
  const [coreB = '', preB] = splitVersion(b);
  const na = coreA.split('.').map(Number);
  const nb = coreB.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (na[i] ?? 0) - (nb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (preA === undefined || preB === undefined) return preA === preB ? 0 : preA === undefined ? 1 : -1;
  const pa = preA.split('.');
  const pb = preB.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : null;
    const ny = /^\d+$/.test(y) ? Number(y) : null;
    if (nx !== null && ny !== null && nx !== ny) return Math.sign(nx - ny);
    if (nx !== null && ny === null) return -1;
    if (nx === null && ny !== null) return 1;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function splitVersion(v: string): [string, string | undefined] {
  const noBuild = v.split('+')[0] ?? '';
  const dash = noBuild.indexOf('-');
  return dash < 0 ? [noBuild, undefined] : [noBuild.slice(0, dash), noBuild.slice(dash + 1)];
}

function incompatible(message: string): CitysenseError {
  return new CitysenseError(OTA_ERRORS.incompatible, message, 409);
}
