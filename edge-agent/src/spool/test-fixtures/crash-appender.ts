/**
 * Child process of the spool crash test: appends records forever (bursts in flight, acking
 * every third id out of order) and prints `<id> <seq>` for each append that resolved. The test
 * kills it with SIGKILL mid-stream and checks that every printed record survived.
 *
 *   node --import tsx crash-appender.ts <dir>
 */
import { Spool } from '../spool.ts';
import { crashPayload } from './crash-payload.ts';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: crash-appender.ts <dir>');
const spool = new Spool({ dir, segmentBytes: 64 * 1024, fsyncIntervalMs: 50 });
await spool.open();
process.stdout.write('ready\n');
let seq = 0;
for (;;) {
  const burst: Promise<void>[] = [];
  for (let i = 0; i < 50; i++) {
    const mySeq = seq++;
    burst.push(
      spool.append(crashPayload(mySeq)).then((id) => {
        process.stdout.write(`${id} ${mySeq}\n`);
      }),
    );
  }
  await Promise.all(burst);
  const stats = spool.stats();
  // Ack every third id of the burst, newest first (the hub may commit later records first).
  const acks = [];
  for (let id = stats.lastId; id > stats.lastId - 50; id--)
    if (id % 3 === 0) acks.push({ first: id, last: id });
  await spool.ack(acks);
}
