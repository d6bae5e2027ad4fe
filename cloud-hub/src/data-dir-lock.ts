import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CitysenseError } from '@citysense/protocol';

/** True when a process with `pid` exists (signal 0 probes without sending). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An exclusive lock on the hub's data dir: the embedded database must never be
 * opened by two processes. A lock left by a killed hub (dead pid) is taken over.
 */
export class DataDirLock {
  readonly path: string;
  #held = false;

  constructor(dataDir: string) {
    this.path = join(dataDir, 'hub.lock');
  }

  /** Takes the lock; throws CS_ERR_DATA_DIR_LOCKED while another live hub holds it. */
  async acquire(): Promise<void> {
    if (this.#held) return;
    await mkdir(join(this.path, '..'), { recursive: true });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(this.path, 'wx', 0o600);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        this.#held = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number.parseInt(await readFile(this.path, 'utf8').catch(() => ''), 10);
        if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) {
          throw new CitysenseError(
            'CS_ERR_DATA_DIR_LOCKED',
            `data dir ${join(this.path, '..')} is in use by hub process ${pid}: stop it first, or use another --data-dir`,
            409,
          );
        }
        await rm(this.path, { force: true });
      }
    }
    throw new CitysenseError('CS_ERR_DATA_DIR_LOCKED', `could not lock ${this.path}`, 409);
  }

  /** Releases the lock; idempotent. */
  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await rm(this.path, { force: true });
  }
}
