import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  type AlgorithmPackage,
  Detector,
  keyFingerprint,
  openFrameSource,
  PACKAGE_EXTENSION,
  packAlgorithm,
  packageLabels,
  readAlgorithmPackage,
} from '@citysense/algorithms';
import {
  CitysenseError,
  errorMessage,
  generateSigningKey,
  isSignatureAlgorithm,
  parseSigningKey,
  SIGNATURE_ALGORITHMS,
} from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { destination, pino } from 'pino';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';
import { advanceVersion, PUBLISH_PATH, type PublishState } from '../version-lifecycle.ts';
import { deployActionOf, runDeployAction } from './deploy.ts';
import { adminTokenFrom } from './token.ts';

const AlgoOptionsSchema = Type.Object({
  key: Type.Optional(Type.String({ description: 'signing key file (pack), written by `algo keygen`' })),
  algorithm: Type.String({
    default: 'ed25519',
    description: `signature algorithm for keygen: ${SIGNATURE_ALGORITHMS.join(' | ')}`,
  }),
  out: Type.Optional(Type.String({ description: 'output file (keygen, pack)' })),
  trust: Type.Optional(
    Type.String({ description: 'verify: key file or public key file of the only signer to accept' }),
  ),
  json: Type.Boolean({ default: false, description: 'print JSON' }),
  fps: Type.Optional(
    Type.Number({ exclusiveMinimum: 0, maximum: 120, description: 'run: decode video at this rate' }),
  ),
  score: Type.Optional(
    Type.Number({ minimum: 0, maximum: 1, description: "run: score threshold (default: the manifest's)" }),
  ),
  limit: Type.Optional(Type.Integer({ minimum: 1, description: 'run: stop after this many frames' })),
  loop: Type.Boolean({ default: false, description: 'run: start a folder over after its last image' }),
  hub: Type.String({
    default: 'http://localhost:8080',
    pattern: '^https?://',
    description: 'upload: hub URL',
  }),
  adminToken: Type.Optional(
    Type.String({ description: 'upload: admin token (default: read from <data-dir>/admin-token)' }),
  ),
  dataDir: Type.String({
    default: './data',
    description: "upload: the hub's data dir, to read its admin token",
  }),
  until: Type.String({
    default: 'draft',
    description: 'upload: take the version on to draft | validated | filed | published',
  }),
});
type AlgoOptions = {
  key?: string;
  algorithm: string;
  out?: string;
  trust?: string;
  json: boolean;
  fps?: number;
  score?: number;
  limit?: number;
  loop: boolean;
  hub: string;
  adminToken?: string;
  dataDir: string;
  until: string;
};
const algoOptions = optionsOf(AlgoOptionsSchema, {
  adminToken: ['CITYSENSE_ADMIN_TOKEN'],
  hub: ['CITYSENSE_HUB'],
});

const USAGE = `Usage:
  citysense algo keygen [--algorithm ed25519|sm2-sm3] --out centre-key.json
  citysense algo pack <folder> --key centre-key.json [--out file${PACKAGE_EXTENSION}]
  citysense algo inspect <file${PACKAGE_EXTENSION}> [--json]
  citysense algo verify <file${PACKAGE_EXTENSION}> [--trust centre-key.json]
  citysense algo deploy <id> <version> (--nodes a,b | --agency X) --source cam1=rtsp://… [--canary 0.1]
  citysense algo deployments | algo rollback <deployment id>
  citysense algo upload <file${PACKAGE_EXTENSION}> [--until validated|filed|published] [--hub URL]
  citysense algo run <file${PACKAGE_EXTENSION}> <image | folder | video file | rtsp:// | http:// URL> [--fps 5] [--score 0.4] [--limit N]`;

/** `citysense algo`: make, look into and check algorithm packages. */
export const algoCommand: Command = {
  name: 'algo',
  summary:
    'algorithm packages and deployments: keygen, pack, inspect, verify, upload, run, deploy, deployments, rollback',
  async run(argv) {
    // deploy / deployments / rollback have their own options (repeatable --source, --nodes).
    if (deployActionOf(argv)) return runDeployAction(argv);
    const args = parseArgs(argv, algoOptions);
    const [action, target] = args.positionals;
    if (args.help || !action) {
      console.log(renderHelp(USAGE, algoCommand.summary, algoOptions));
      return args.help ? 0 : 2;
    }
    const o = loadConfig<AlgoOptions>(AlgoOptionsSchema, algoOptions, args, process.env);
    switch (action) {
      case 'keygen':
        return keygen(o);
      case 'pack':
        return pack(required(target, 'the package source folder'), o);
      case 'inspect':
        return inspect(await readAlgorithmPackage(required(target, 'the package file')), o.json);
      case 'verify':
        return verify(required(target, 'the package file'), o);
      case 'upload':
        return upload(required(target, 'the package file'), o);
      case 'run':
        return run(
          required(target, 'the package file'),
          required(args.positionals[2], 'the image, folder or stream to run on'),
          o,
        );
      default:
        throw usageError(`unknown action "${action}"`);
    }
  },
};

async function keygen(o: AlgoOptions): Promise<number> {
  if (!isSignatureAlgorithm(o.algorithm))
    throw usageError(`--algorithm must be one of ${SIGNATURE_ALGORITHMS.join(', ')}`);
  const out = required(o.out, '--out <key file>');
  const key = generateSigningKey(o.algorithm);
  // 'wx': never overwrite a centre key by accident.
  await writeFile(out, `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600, flag: 'wx' }).catch((err) => {
    throw new CitysenseError('CS_ERR_CLI_OUTPUT', `could not write ${out}: ${errorMessage(err)}`, 400);
  });
  console.log(`${o.algorithm} signing key written to ${out} (keep it secret)`);
  console.log(`public key fingerprint ${keyFingerprint(key.publicKey)}`);
  return 0;
}

async function pack(folder: string, o: AlgoOptions): Promise<number> {
  const key = await readKeyFile(required(o.key, '--key <signing key file>'));
  const { file, manifest } = await packAlgorithm(folder, key);
  const out = resolve(o.out ?? `${manifest.id}-${manifest.version}${PACKAGE_EXTENSION}`);
  await writeFile(out, file);
  console.log(
    `packed ${manifest.id} ${manifest.version} → ${out} (${file.length} bytes, ${Object.keys(manifest.parts).length} parts, signed ${key.algorithm} ${keyFingerprint(key.publicKey)})`,
  );
  return 0;
}

function inspect(pkg: AlgorithmPackage, json: boolean): number {
  const m = pkg.manifest;
  const summary = {
    id: m.id,
    version: m.version,
    name: m.name,
    task: m.task,
    input: m.input,
    output: m.output,
    thresholds: m.thresholds,
    requirements: m.requirements,
    licence: m.licence,
    provenance: m.provenance,
    tests: m.tests.length,
    parts: m.parts,
    signature: { algorithm: pkg.signature.algorithm, signer: keyFingerprint(pkg.signature.publicKey) },
    sha256: pkg.sha256,
    bytes: pkg.bytes,
  };
  if (json) {
    console.log(JSON.stringify(summary, null, 2));
    return 0;
  }
  console.log(`${m.id} ${m.version}  ${m.name}`);
  console.log(`  task       ${m.task}, decoder ${m.output.decoder}`);
  console.log(
    `  input      ${m.input.name} [${m.input.shape.join(', ')}] ${m.input.layout} ${m.input.colorOrder}, ${m.input.resize}`,
  );
  console.log(`  output     ${m.output.name}${m.output.shape ? ` [${m.output.shape.join(', ')}]` : ''}`);
  console.log(
    `  needs      ONNX Runtime ≥ ${m.requirements.onnxruntime}, ${m.requirements.minMemoryMiB} MiB, ${m.requirements.minCpuCores} core(s)`,
  );
  console.log(`  licence    ${m.licence.spdx}; ${m.provenance.source}`);
  console.log(
    `  signed     ${pkg.signature.algorithm} by ${keyFingerprint(pkg.signature.publicKey)} (valid)`,
  );
  console.log(`  file       ${pkg.bytes} bytes, sha256 ${pkg.sha256}`);
  for (const [path, d] of Object.entries(m.parts))
    console.log(`  part       ${path}  ${d.bytes} bytes  ${d.sha256}`);
  return 0;
}

async function verify(file: string, o: AlgoOptions): Promise<number> {
  const trustedKeys = o.trust ? [await readPublicKey(o.trust)] : undefined;
  const pkg = await readAlgorithmPackage(file, trustedKeys ? { trustedKeys } : {});
  console.log(
    `OK ${pkg.manifest.id} ${pkg.manifest.version}: ${Object.keys(pkg.manifest.parts).length} parts match their SHA-256; ` +
      `${pkg.signature.algorithm} signature by ${keyFingerprint(pkg.signature.publicKey)} is valid` +
      (trustedKeys ? ' and trusted' : ' (signer not checked: pass --trust to require one)'),
  );
  return 0;
}

/**
 * Uploads a package to the hub's algorithm centre, streamed with progress on stderr,
 * then takes the version through the lifecycle up to `--until`.
 */
async function upload(file: string, o: AlgoOptions): Promise<number> {
  const until = o.until as PublishState;
  if (!PUBLISH_PATH.includes(until)) throw usageError(`--until must be one of ${PUBLISH_PATH.join(', ')}`);
  // Checked locally first: a broken or tampered file fails here, not after the transfer.
  const pkg = await readAlgorithmPackage(file);
  const { id, version } = pkg.manifest;
  const token = adminTokenFrom(o);
  const { status, body: reply } = await new HubClient(o.hub, token).uploadFile<{ state?: string }>(
    '/v1/algorithms/packages',
    file,
    `${id} ${version}`,
  );
  const state = (reply.state ?? 'draft') as PublishState;
  console.log(`uploaded ${id} ${version} (${status === 201 ? 'new' : 'already there'}), state ${state}`);
  const result = await advanceVersion(new HubClient(o.hub, token), id, version, state, until, (s) =>
    console.log(`${id} ${version} → ${s}`),
  );
  if (!result.stuck) return 0;
  console.error(
    `${id} ${version} stays ${result.state}: ${result.stuck.reason} (GET /v1/algorithms/${id}/versions/${version} has the report)`,
  );
  return 1;
}

/** Runs a package locally on images or a stream: one JSON line per frame on stdout, errors on stderr. */
async function run(file: string, spec: string, o: AlgoOptions): Promise<number> {
  const trustedKeys = o.trust ? [await readPublicKey(o.trust)] : undefined;
  const pkg = await readAlgorithmPackage(file, trustedKeys ? { trustedKeys } : {});
  const model = pkg.parts.get(pkg.manifest.model) ?? Buffer.alloc(0);
  // stdout carries the JSON lines; logs go to stderr.
  const logger = pino({ level: process.env.CITYSENSE_LOG_LEVEL ?? 'warn' }, destination(2));
  const detector = await Detector.load(model, pkg.manifest, packageLabels(pkg), { logger });
  const source = await openFrameSource(spec, {
    loop: o.loop,
    logger,
    ...(o.fps === undefined ? {} : { fps: o.fps }),
  });
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let frames = 0;
  try {
    for await (const frame of source.frames(controller.signal)) {
      const image = frame.image.kind === 'encoded' ? frame.image.data : frame.image;
      const d = await detector.detect(image, o.score === undefined ? {} : { score: o.score });
      const line = {
        source: frame.source,
        ...(frame.file === undefined ? {} : { file: frame.file }),
        index: frame.index,
        time: new Date(frame.time).toISOString(),
        width: d.width,
        height: d.height,
        ms: {
          preprocess: round1(d.timings.preprocessMs),
          infer: round1(d.timings.inferMs),
          postprocess: round1(d.timings.postprocessMs),
        },
        objects: d.objects.map((obj) => ({
          label: obj.label,
          score: Math.round(obj.score * 1000) / 1000,
          ...(obj.box ? { box: obj.box.map(round1) } : {}),
        })),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      if (++frames === o.limit) break;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await detector.release();
  }
  const s = source.stats();
  console.error(
    `${frames} frame(s) from ${source.describe().input}${s.dropped ? `, ${s.dropped} dropped (inference slower than the stream)` : ''}`,
  );
  return 0;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

/** A signing key file written by `algo keygen`. */
export async function readKeyFile(path: string) {
  return parseSigningKey(await readText(path));
}

/** A public key from a key file (JSON) or a bare public key file (PEM or SM2 hex). */
export async function readPublicKey(path: string): Promise<string> {
  const text = (await readText(path)).trim();
  if (text.startsWith('{')) {
    const doc = JSON.parse(text) as { publicKey?: unknown };
    if (typeof doc.publicKey === 'string') return doc.publicKey;
    throw new CitysenseError('CS_ERR_SIGNING_KEY', `${path} has no publicKey`, 400);
  }
  return text.includes('BEGIN PUBLIC KEY') ? `${text}\n` : text;
}

async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch((err) => {
    throw new CitysenseError('CS_ERR_CLI_INPUT', `could not read ${path}: ${errorMessage(err)}`, 400);
  });
}

function required(value: string | undefined, what: string): string {
  if (!value) throw usageError(`missing ${what}`);
  return value;
}

function usageError(message: string): CitysenseError {
  return new CitysenseError('CS_ERR_CONFIG_INVALID', `${message}\n\n${USAGE}`, 400);
}
