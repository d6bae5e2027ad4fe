/** Stable error codes of OTA artifacts, slots and updates. */
export const OTA_ERRORS = {
  /** The file is not an artifact: layout, manifest schema, signature section or length. */
  invalid: 'CS_ERR_OTA_ARTIFACT_INVALID',
  /** Signed by a key the platform does not trust. */
  untrustedKey: 'CS_ERR_OTA_UNTRUSTED_KEY',
  /** The signature does not verify over the manifest. */
  signature: 'CS_ERR_OTA_SIGNATURE',
  /** The payload does not match the manifest's SHA-256, or the file not the assignment's. */
  digest: 'CS_ERR_OTA_DIGEST',
  /** A download broke off (network, hub 5xx, stall); it resumes from the `.part` file. */
  download: 'CS_ERR_OTA_DOWNLOAD',
  /** The hub refused the download (4xx without a code of its own). */
  downloadRefused: 'CS_ERR_OTA_DOWNLOAD_REFUSED',
  /** The artifact is valid but not the name, version or target the assignment names. */
  mismatch: 'CS_ERR_OTA_MISMATCH',
  /** Wrong hardware model, target, or an agent older than the manifest's minAgentVersion. */
  incompatible: 'CS_ERR_OTA_INCOMPATIBLE',
  /** Not enough free space for the slot; nothing was written. */
  noSpace: 'CS_ERR_OTA_NO_SPACE',
  /** An agent bundle that is not a .tar.gz or lacks its entry point. */
  bundle: 'CS_ERR_OTA_BUNDLE_INVALID',
  /** Writing the slot failed (disk error). */
  install: 'CS_ERR_OTA_INSTALL',
  /** Another update is on trial for this target; it must pass or roll back first. */
  busy: 'CS_ERR_OTA_BUSY',
  /** slots.json is unreadable, or an operation does not fit the slot state. */
  slotState: 'CS_ERR_OTA_SLOT_STATE',
  /** The new version did not pass its health check within the assignment's timeout. */
  healthTimeout: 'CS_ERR_OTA_HEALTH_TIMEOUT',
  /** The new version restarted more often than allowed before passing its health check. */
  crashLoop: 'CS_ERR_OTA_CRASH_LOOP',
  /** The bootloader hook command failed. */
  bootloader: 'CS_ERR_OTA_BOOTLOADER',
  /** An agent update needs the supervisor (`citysense agent --supervise`) to switch slots. */
  unsupervised: 'CS_ERR_OTA_UNSUPERVISED',
} as const;

/** One of the OTA error codes. */
export type OtaErrorCode = (typeof OTA_ERRORS)[keyof typeof OTA_ERRORS];
