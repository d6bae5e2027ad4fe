/**
 * Test support only: a child process that installs the same payload into the inactive slot
 * over and over, so that a test can kill -9 it at any moment. argv: stateDir target payload manifest.json
 */
import { readFile } from 'node:fs/promises';
import type { OtaManifest, OtaTarget } from '@citysense/protocol';
import { SlotStore } from '../slots.ts';

const [stateDir = '', target = 'agent', payload = '', manifestPath = ''] = process.argv.slice(2);
const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as OtaManifest;
const store = new SlotStore({ stateDir, target: target as OtaTarget, factoryVersion: '1.0.0' });
await store.open();
process.stdout.write('ready\n');
for (;;) await store.install(payload, manifest);
