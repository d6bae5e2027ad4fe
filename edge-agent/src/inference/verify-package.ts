/** Trust check of a package before any of it runs: signature, part digests, and that it is what was assigned. */
import { type AlgorithmPackage, openAlgorithmPackage } from '@citysense/algorithms';
import type { AlgorithmAssignment } from '@citysense/protocol';
import { inferenceError, PACKAGE_DIGEST, PACKAGE_MISMATCH } from './errors.ts';

/**
 * Opens `file` with the document's trusted keys (CS_ERR_ALGO_SIGNATURE,
 * CS_ERR_ALGO_UNTRUSTED_KEY, CS_ERR_ALGO_PART_DIGEST, … from openAlgorithmPackage), then
 * checks the file's SHA-256 (CS_ERR_INFERENCE_PACKAGE_DIGEST) and that its manifest names
 * the assigned algorithm and version (CS_ERR_INFERENCE_PACKAGE_MISMATCH).
 */
export function verifyPackage(
  file: Buffer,
  assignment: AlgorithmAssignment,
  trustedKeys: readonly string[],
): AlgorithmPackage {
  const pkg = openAlgorithmPackage(file, { trustedKeys });
  if (pkg.sha256 !== assignment.sha256)
    throw inferenceError(
      PACKAGE_DIGEST,
      `cached package has SHA-256 ${pkg.sha256}, the assignment names ${assignment.sha256}`,
      422,
    );
  const { id, version } = pkg.manifest;
  if (id !== assignment.algorithmId || version !== assignment.version)
    throw inferenceError(
      PACKAGE_MISMATCH,
      `package is ${id} ${version} but deployment ${assignment.deploymentId} assigns ` +
        `${assignment.algorithmId} ${assignment.version}; ask the hub operator to check the deployment`,
      422,
    );
  return pkg;
}
