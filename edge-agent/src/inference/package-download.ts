/**
 * One resumable download of a package file into `<sha256>.part`: the shared Range
 * downloader of @citysense/firmware-ota with the inference runtime's error codes.
 */
import {
  downloadRanged,
  type RangedDownloadRequest,
  type RangedDownloadResult,
} from '@citysense/firmware-ota';
import { PACKAGE_DIGEST, PACKAGE_DOWNLOAD, PACKAGE_REFUSED } from './errors.ts';

/** What to fetch and where to put it. */
export type PackageDownloadRequest = Omit<RangedDownloadRequest, 'errors' | 'noun'>;

/** What one successful attempt did. */
export type PackageDownloadResult = RangedDownloadResult;

const PACKAGE_ERRORS = { download: PACKAGE_DOWNLOAD, refused: PACKAGE_REFUSED, digest: PACKAGE_DIGEST };

/**
 * Downloads (the rest of) a package and checks size and SHA-256 of the whole file
 * before renaming it into place. Throws CS_ERR_INFERENCE_DOWNLOAD (503, retry: the
 * part keeps what arrived), the hub's own code or CS_ERR_INFERENCE_DOWNLOAD_REFUSED on
 * 4xx, CS_ERR_INFERENCE_PACKAGE_DIGEST (part deleted) when the file is not the one named.
 */
export function downloadPackage(req: PackageDownloadRequest): Promise<PackageDownloadResult> {
  return downloadRanged({ ...req, errors: PACKAGE_ERRORS, noun: 'package' });
}
