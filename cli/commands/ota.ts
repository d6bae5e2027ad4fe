import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { keyFingerprint } from '@citysense/algorithms';
import {
  ARTIFACT_EXTENSION,
  type ArtifactHead,
  BUNDLE_ENTRY,
  bundleBytes,
  extractPayload,
  packArtifact,
  readArtifactHead,
  sha256OfFile,
  verifyArtifact,
} from '@citysense/firmware-ota';
import { CitysenseError, OTA_TARGETS, type OtaTarget } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { create as createTar } from 'tar';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
import type { Command } from '../main.ts';
import { readKeyFile, readPublicKey } from './algo.ts';

const OtaOptionsSchema = Type.Object({
  name: Type.Optional(
    Type.String({ description: 'pack: artifact name, e.g. citysense-agent or lamp-gateway-fw' }),
  ),
  version: Type.Optional(Type.String({ description: 'pack: semantic version, e.g. 2.1.0' })),
  target: Type.Optional(Type.String({ description: `pack: ${OTA_TARGETS.join(' | ')}` })),
  hardware: Type.Optional(
    Type.String({ description: 'pack: hardware models it installs on, comma-separated (default: any)' }),
  ),
  minAgentVersion: Type.Optional(
    Type.String({ description: 'pack: oldest agent version that can install it' }),
  ),
  notes: Type.Optional(Type.String({ description: 'pack: release notes' })),
  key: Type.Optional(
    Type.String({ description: 'pack: signing key file, written by `citysense algo keygen`' }),
  ),
  out: Type.Optional(
    Type.String({
      description: `pack: output file (default <name>-<version>${ARTIFACT_EXTENSION}); also -o`,
    }),
  ),
  trustedKey: Type.Optional(
    Type.String({ description: 'verify: key file or public key file of the only signer to accept' }),
  ),
  json: Type.Boolean({ default: false, description: 'inspect: print JSON' }),
});
type OtaOptions = {
  name?: string;
  version?: string;
  target?: string;
  hardware?: string;
  minAgentVersion?: string;
  notes?: string;
  key?: string;
  out?: string;
  trustedKey?: string;
  json: boolean;
};
const otaOptions = optionsOf(OtaOptionsSchema);

const USAGE = `Usage:
  citysense ota pack <payload file | agent folder> --name N --version V --target agent|firmware [--hardware LPG-3,LPG-4] --key centre-key.json [-o out${ARTIFACT_EXTENSION}]
  citysense ota inspect <file${ARTIFACT_EXTENSION}> [--json]
  citysense ota verify <file${ARTIFACT_EXTENSION}> [--trusted-key centre-key.json]

For --target agent the payload is a .tar.gz bundle with ${BUNDLE_ENTRY} at its root; give a folder and it is packed for you.
Upload and roll out with \`citysense campaign\`.`;

/** `citysense ota`: make, look into and check signed OTA artifacts for agent software and gateway firmware. */
export const otaCommand: Command = {
  name: 'ota',
  summary: 'OTA artifacts for agent software and gateway firmware: pack (signed), inspect, verify',
  async run(argv) {
    const args = parseArgs(
      argv.map((a) => (a === '-o' ? '--out' : a)),
      otaOptions,
    );
    const [action, target] = args.positionals;
    if (args.help || !action) {
      console.log(renderHelp(USAGE, otaCommand.summary, otaOptions));
      return args.help ? 0 : 2;
    }
    const o = loadConfig<OtaOptions>(OtaOptionsSchema, otaOptions, args, process.env);
    switch (action) {
      case 'pack':
        return pack(required(target, 'the payload file or agent folder'), o);
      case 'inspect':
        return inspect(required(target, 'the artifact file'), o.json);
      case 'verify':
        return verify(required(target, 'the artifact file'), o);
      default:
        throw usageError(`unknown action "${action}"`);
    }
  },
};

async function pack(payload: string, o: OtaOptions): Promise<number> {
  const name = required(o.name, '--name');
  const version = required(o.version, '--version');
  const target = required(o.target, '--target') as OtaTarget;
  if (!OTA_TARGETS.includes(target)) throw usageError(`--target must be one of ${OTA_TARGETS.join(', ')}`);
  const key = await readKeyFile(required(o.key, '--key <signing key file>'));
  const out = resolve(o.out ?? `${name}-${version}${ARTIFACT_EXTENSION}`);
  const info = await stat(payload).catch(() => {
    throw new CitysenseError('CS_ERR_CLI_INPUT', `${payload} does not exist`, 400);
  });
  let payloadPath = payload;
  let temp: string | null = null;
  try {
    if (info.isDirectory()) {
      if (target !== 'agent')
        throw usageError('a folder is packed only for --target agent; a firmware payload is one image file');
      temp = await mkdtemp(join(tmpdir(), 'citysense-ota-pack-'));
      payloadPath = join(temp, `${basename(resolve(payload))}.tar.gz`);
      await createTar({ gzip: true, file: payloadPath, cwd: payload, portable: true }, ['.']);
    }
    // An agent bundle is checked before it is signed: the node would refuse it anyway.
    if (target === 'agent') await bundleBytes(payloadPath);
    const head = await packArtifact(
      {
        name,
        version,
        target,
        ...(o.hardware
          ? {
              hardware: o.hardware
                .split(',')
                .map((h) => h.trim())
                .filter(Boolean),
            }
          : {}),
        ...(o.minAgentVersion ? { minAgentVersion: o.minAgentVersion } : {}),
        ...(o.notes ? { notes: o.notes } : {}),
      },
      payloadPath,
      out,
      key,
    );
    console.log(
      `packed ${target} ${name} ${version} → ${out} (${head.fileBytes} bytes, payload ${head.manifest.payload.bytes} bytes, signed ${key.algorithm} ${keyFingerprint(key.publicKey)})`,
    );
    return 0;
  } finally {
    if (temp) await rm(temp, { recursive: true, force: true });
  }
}

async function inspect(file: string, json: boolean): Promise<number> {
  const head = await readArtifactHead(file);
  const m = head.manifest;
  const summary = {
    ...m,
    signature: { algorithm: head.signature.algorithm, signer: keyFingerprint(head.signature.publicKey) },
    file: { bytes: head.fileBytes, sha256: await sha256OfFile(file) },
  };
  if (json) {
    console.log(JSON.stringify(summary, null, 2));
    return 0;
  }
  console.log(`${m.name} ${m.version}  (${m.target})`);
  console.log(`  hardware   ${m.hardware?.join(', ') ?? 'any'}`);
  if (m.minAgentVersion) console.log(`  needs      agent ≥ ${m.minAgentVersion}`);
  console.log(`  payload    ${m.payload.bytes} bytes, sha256 ${m.payload.sha256}`);
  console.log(
    `  signed     ${head.signature.algorithm} by ${keyFingerprint(head.signature.publicKey)} (not verified: use ota verify)`,
  );
  console.log(`  created    ${m.createdAt}`);
  console.log(`  file       ${head.fileBytes} bytes, sha256 ${summary.file.sha256}`);
  if (m.notes) console.log(`  notes      ${m.notes}`);
  return 0;
}

async function verify(file: string, o: OtaOptions): Promise<number> {
  const trustedKeys = o.trustedKey ? [await readPublicKey(o.trustedKey)] : undefined;
  const head = await verifyArtifact(file, trustedKeys ? { trustedKeys } : {});
  await checkBundle(file, head);
  const m = head.manifest;
  console.log(
    `OK ${m.target} ${m.name} ${m.version}: payload matches its SHA-256; ${head.signature.algorithm} signature by ` +
      `${keyFingerprint(head.signature.publicKey)} is valid` +
      (trustedKeys ? ' and trusted' : ' (signer not checked: pass --trusted-key to require one)'),
  );
  return 0;
}

/** For an agent artifact, the bundle inside must be one the node can install. */
async function checkBundle(file: string, head: ArtifactHead): Promise<void> {
  if (head.manifest.target !== 'agent') return;
  const temp = await mkdtemp(join(tmpdir(), 'citysense-ota-verify-'));
  try {
    const bundle = join(temp, 'bundle.tar.gz');
    await extractPayload(file, head, bundle);
    await bundleBytes(bundle);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

function required(value: string | undefined, what: string): string {
  if (!value) throw usageError(`missing ${what}`);
  return value;
}

function usageError(message: string): CitysenseError {
  return new CitysenseError('CS_ERR_CONFIG_INVALID', `${message}\n\n${USAGE}`, 400);
}
