/**
 * The bootloader hook: how a firmware slot switch reaches the hardware. On a real gateway
 * this is where U-Boot's `fw_setenv`, GRUB's `grub-editenv` or a vendor tool marks the
 * slot to boot (and, on confirm, marks it good); on the simulated gateway no hook is
 * configured and the "reboot" is the agent restarting its own process.
 */
import { execFile } from 'node:child_process';
import { CitysenseError } from '@citysense/protocol';
import { OTA_ERRORS } from './errors.ts';
import type { SlotName } from './slots.ts';

/** What the hook is asked to do: boot a new slot on trial, go back to one, or mark the running one good. */
export type BootloaderAction = 'activate' | 'rollback' | 'confirm';

/** Makes the bootloader boot `slot` (null: the factory image, `slotPath` null). Throws CS_ERR_OTA_BOOTLOADER. */
export type BootloaderHook = (
  action: BootloaderAction,
  slot: SlotName | null,
  slotPath: string | null,
) => Promise<void>;

/** Limit of one hook run. */
const HOOK_TIMEOUT_MS = 60_000;

/**
 * A hook that runs `command` (argv, no shell) with three more arguments: the action, the
 * slot (`a`, `b` or `factory`) and the slot directory (empty for factory; the firmware
 * image is `<dir>/image.bin`). Exit status 0 is success; anything else throws
 * CS_ERR_OTA_BOOTLOADER with its stderr.
 */
export function commandBootloaderHook(command: readonly string[]): BootloaderHook {
  const [file, ...args] = command;
  if (!file) throw new CitysenseError(OTA_ERRORS.bootloader, 'bootloader hook command is empty', 400);
  return (action, slot, slotPath) =>
    new Promise((resolve, reject) => {
      execFile(
        file,
        [...args, action, slot ?? 'factory', slotPath ?? ''],
        { timeout: HOOK_TIMEOUT_MS },
        (err, _stdout, stderr) => {
          if (!err) return resolve();
          reject(
            new CitysenseError(
              OTA_ERRORS.bootloader,
              `bootloader hook ${file} ${action} ${slot ?? 'factory'} failed: ${String(stderr).trim().slice(0, 500) || err.message}`,
              500,
            ),
          );
        },
      );
    });
}
