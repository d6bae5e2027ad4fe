import { readFileSync } from 'node:fs';
import { adminTokenPath } from '@citysense/cloud-hub';
import { CitysenseError } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';

const TokenOptionsSchema = Type.Object({
  hub: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', description: 'hub URL' }),
  adminToken: Type.Optional(
    Type.String({
      description: 'admin token, or your API token (default: read from <data-dir>/admin-token)',
    }),
  ),
  dataDir: Type.String({ default: './data', description: "the hub's data dir, to read its admin token" }),
  name: Type.Optional(Type.String({ description: 'node id the enrolled box will get' })),
  expires: Type.String({ default: '24h', description: 'token lifetime, e.g. 30m, 24h, 7d' }),
  ttl: Type.Optional(Type.String({ description: 'lifetime of a replacement token (default: --expires)' })),
  json: Type.Boolean({ default: false, description: 'print JSON' }),
});
type TokenOptions = {
  hub: string;
  adminToken?: string;
  dataDir: string;
  name?: string;
  expires: string;
  ttl?: string;
  json: boolean;
};
const tokenOptions = optionsOf(TokenOptionsSchema, {
  adminToken: ['CITYSENSE_ADMIN_TOKEN'],
  hub: ['CITYSENSE_HUB'],
});

/** Admin token from options, else from the hub's data dir. */
export function adminTokenFrom(o: { adminToken?: string | undefined; dataDir: string }): string {
  if (o.adminToken) return o.adminToken;
  try {
    return readFileSync(adminTokenPath(o.dataDir), 'utf8').trim();
  } catch {
    throw new CitysenseError(
      'CS_ERR_AUTH_REQUIRED',
      `no admin token: pass --admin-token, set CITYSENSE_ADMIN_TOKEN, or run where the hub's data dir is (--data-dir, looked in ${adminTokenPath(o.dataDir)})`,
      401,
    );
  }
}

/** `citysense token create|list|replace`: one-time enrolment tokens for new gateways, replacement tokens for swapped boxes. */
export const tokenCommand: Command = {
  name: 'token',
  summary:
    'create or list one-time enrolment tokens (token create --name pole-17 --expires 24h); token replace <nodeId> [--ttl 24h] lets a new box take over a node',
  async run(argv) {
    const args = parseArgs(argv, tokenOptions);
    const [action, nodeId] = args.positionals;
    const valid = action === 'create' || action === 'list' || (action === 'replace' && nodeId !== undefined);
    if (args.help || !valid) {
      console.log(
        renderHelp(
          'Usage: citysense token create|list [options]\n       citysense token replace <nodeId> [--ttl 24h] [options]',
          tokenCommand.summary,
          tokenOptions,
        ),
      );
      return args.help ? 0 : 2;
    }
    const o = loadConfig<TokenOptions>(TokenOptionsSchema, tokenOptions, args, process.env);
    const client = new HubClient(o.hub, adminTokenFrom(o));
    if (action === 'replace' && nodeId !== undefined) {
      const created = await client.createReplacementToken(nodeId, { ttl: o.ttl ?? o.expires });
      if (o.json) console.log(JSON.stringify(created, null, 2));
      else {
        console.log(created.token);
        console.error(`one-time replacement token ${created.id} for node ${created.replacesNode}, expires ${created.expiresAt}
on the NEW box (empty state dir), run:
  npx citysense agent --hub ${o.hub} --token ${created.token}
it takes over node ${created.replacesNode} with its history; the old box's credentials stop working when it enrols.`);
      }
      return 0;
    }
    if (action === 'list') {
      const tokens = await client.listTokens();
      if (o.json) console.log(JSON.stringify(tokens, null, 2));
      else
        for (const t of tokens)
          console.log(
            `${t.id}  ${t.name ?? '-'}  expires ${t.expiresAt}  ${t.usedAt ? `used by ${t.usedByNode}` : 'unused'}`,
          );
      return 0;
    }
    const created = await client.createToken({ name: o.name, expires: o.expires });
    if (o.json) console.log(JSON.stringify(created, null, 2));
    else {
      console.log(created.token);
      console.error(`one-time token ${created.id}${created.name ? ` for node ${created.name}` : ''}, expires ${created.expiresAt}
enrol a gateway with:  npx citysense agent --hub ${o.hub} --token ${created.token}`);
    }
    return 0;
  },
};
