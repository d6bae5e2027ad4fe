import { CitysenseError } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';
import { adminTokenFrom } from './token.ts';

const AgencyOptionsSchema = Type.Object({
  hub: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', description: 'hub URL' }),
  adminToken: Type.Optional(
    Type.String({ description: 'admin token (default: read from <data-dir>/admin-token)' }),
  ),
  dataDir: Type.String({ default: './data', description: "the hub's data dir, to read its admin token" }),
  name: Type.Optional(Type.String({ minLength: 1, description: 'agency name, e.g. 海淀区城管委' })),
  kind: Type.String({
    pattern: '^(district|bureau|platform)$',
    default: 'bureau',
    description: 'district, bureau or platform (the big-data bureau)',
  }),
  parent: Type.Optional(Type.String({ description: 'id of the parent agency' })),
  json: Type.Boolean({ default: false, description: 'print JSON' }),
});
type AgencyOptions = {
  hub: string;
  adminToken?: string;
  dataDir: string;
  name?: string;
  kind: 'district' | 'bureau' | 'platform';
  parent?: string;
  json: boolean;
};
const agencyOptions = optionsOf(AgencyOptionsSchema, {
  adminToken: ['CITYSENSE_ADMIN_TOKEN'],
  hub: ['CITYSENSE_HUB'],
});

/** An agency as the hub lists it. */
interface AgencyView {
  id: string;
  name: string;
  kind: string;
  parentId: string | null;
}

/** `citysense agency create|list`: the agencies (districts, bureaus, the platform) people belong to. */
export const agencyCommand: Command = {
  name: 'agency',
  summary: 'create or list agencies (agency create haidian --name 海淀区 --kind district)',
  async run(argv) {
    const args = parseArgs(argv, agencyOptions);
    const [action, id] = args.positionals;
    if (args.help || (action !== 'create' && action !== 'list')) {
      console.log(
        renderHelp(
          'Usage: citysense agency create <id> --name <name> [--kind district|bureau|platform] [--parent <id>]\n       citysense agency list',
          agencyCommand.summary,
          agencyOptions,
        ),
      );
      return args.help ? 0 : 2;
    }
    const o = loadConfig<AgencyOptions>(AgencyOptionsSchema, agencyOptions, args, process.env);
    const client = new HubClient(o.hub, adminTokenFrom(o));
    if (action === 'list') {
      const agencies = await client.request<AgencyView[]>('GET', '/v1/agencies');
      if (o.json) console.log(JSON.stringify(agencies, null, 2));
      else
        for (const a of agencies)
          console.log(`${a.id}  ${a.kind}  ${a.name}${a.parentId ? `  (under ${a.parentId})` : ''}`);
      return 0;
    }
    if (!id || !o.name)
      throw new CitysenseError(
        'CS_ERR_CONFIG_INVALID',
        'agency create needs an id and --name: citysense agency create <id> --name <name> --kind <kind>',
        400,
      );
    const saved = await client.request<AgencyView>('PUT', `/v1/agencies/${encodeURIComponent(id)}`, {
      name: o.name,
      kind: o.kind,
      ...(o.parent ? { parentId: o.parent } : {}),
    });
    if (o.json) console.log(JSON.stringify(saved, null, 2));
    else console.log(`agency ${saved.id} (${saved.kind}) saved: ${saved.name}`);
    return 0;
  },
};
