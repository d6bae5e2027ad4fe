import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

// 64-bit fields decode to JS numbers, not Long objects: Sparkplug timestamps and
// aliases fit in 2^53, and numbers keep the ingest hot path allocation-free.
// Int64 values beyond ±2^53 lose precision; citysense documents that limit.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

/**
 * Parses a `.proto` file that sits next to this module, keeping field names as
 * written; `transform` may adjust the text first (see the Sparkplug codec).
 */
export function loadProto(fileName: string, transform: (text: string) => string = (t) => t): protobuf.Root {
  const text = transform(readFileSync(new URL(fileName, import.meta.url), 'utf8'));
  return protobuf.parse(text, { keepCase: true }).root;
}

/** Looks up a message type, failing loudly at start-up if the schema lacks it. */
export function lookupType(root: protobuf.Root, name: string): protobuf.Type {
  return root.lookupType(name);
}
