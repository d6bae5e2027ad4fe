/** Stable error codes of OTA artifacts, slots and updates. */
export const OTA_ERRORS = {
  /** The file is not an artifact: layout, manifest schema, signature section or length. */
  invalid: 'CS_ERR_OTA_ARTIFACT_INVALID',
  /** Signed by a key the platform does not trust. */
  untrustedKey: 'CS_ERR_OTA_UNTRUSTED_KEY',
  /** The signature does not verify over the manifest. */
  signature: 'CS_ERR_OTA_SIGNATURE',
  /** The payload does not match the manifest's SHA-256. */
  digest: 'CS_ERR_OTA_DIGEST',
} as const;
