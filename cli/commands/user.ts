import { CitysenseError } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';
import { adminTokenFrom } from './token.ts';

const UserOptionsSchema = Type.Object({
  hub: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', description: 'hub URL' }),
  adminToken: Type.Optional(
    Type.String({ description: 'admin token (default: read from <data-dir>/admin-token)' }),
  ),
  dataDir: Type.String({ default: './data', description: "the hub's data dir, to read its admin token" }),
  agency: Type.Optional(Type.String({ description: 'agency id (create: required; list: filter)' })),
  displayName: Type.Optional(Type.String({ minLength: 1, description: 'full name (default: the username)' })),
  role: Type.Optional(
    Type.String({
      description:
        'create: roles, comma separated: platform-admin, agency-operator, reviewer:<video|urban-operations|hazard-monitoring>, algorithm-admin, field-engineer',
    }),
  ),
  userPassword: Type.Optional(
    Type.String({ minLength: 10, description: 'password for create/passwd (prefer the env variable)' }),
  ),
  json: Type.Boolean({ default: false, description: 'print JSON' }),
});
type UserOptions = {
  hub: string;
  adminToken?: string;
  dataDir: string;
  agency?: string;
  displayName?: string;
  role?: string;
  userPassword?: string;
  json: boolean;
};
const userOptions = optionsOf(
  UserOptionsSchema,
  { adminToken: ['CITYSENSE_ADMIN_TOKEN'], hub: ['CITYSENSE_HUB'] },
  { userPassword: '--password' },
);

/** A user as the hub shows it. */
interface UserView {
  id: string;
  username: string;
  displayName: string;
  agencyId: string;
  disabled: boolean;
  roles: Array<{ role: string; category?: string }>;
}

const ACTIONS = ['create', 'list', 'grant', 'revoke', 'passwd'] as const;
const USAGE = `Usage: citysense user create <username> --agency <id> [--display-name <name>] [--role <role>[,<role>…]]
       citysense user list [--agency <id>]
       citysense user grant|revoke <username> <role>[:<category>]
       citysense user passwd <username>
The password of create/passwd comes from --password or CITYSENSE_USER_PASSWORD; it is never printed.`;

/** `reviewer:video` → `{ role: 'reviewer', category: 'video' }`. */
function parseGrant(text: string): { role: string; category?: string } {
  const [role = '', category] = text.trim().split(':');
  return category ? { role, category } : { role };
}

const label = (g: { role: string; category?: string }) => (g.category ? `${g.role}:${g.category}` : g.role);

function needPassword(o: UserOptions): string {
  if (o.userPassword) return o.userPassword;
  throw new CitysenseError(
    'CS_ERR_CONFIG_INVALID',
    'no password: set CITYSENSE_USER_PASSWORD (or pass --password) — at least 10 characters',
    400,
  );
}

/** `citysense user create|list|grant|revoke|passwd`: people who sign in to the hub. */
export const userCommand: Command = {
  name: 'user',
  summary: 'create, list and grant roles to users (user create wang --agency haidian --role agency-operator)',
  async run(argv) {
    const args = parseArgs(argv, userOptions);
    const [action, username, grant] = args.positionals;
    if (args.help || !ACTIONS.includes(action as (typeof ACTIONS)[number])) {
      console.log(renderHelp(USAGE, userCommand.summary, userOptions));
      return args.help ? 0 : 2;
    }
    const o = loadConfig<UserOptions>(UserOptionsSchema, userOptions, args, process.env);
    const client = new HubClient(o.hub, adminTokenFrom(o));
    if (action === 'list') {
      const query = o.agency ? `?agency=${encodeURIComponent(o.agency)}` : '';
      const users = await client.request<UserView[]>('GET', `/v1/users${query}`);
      if (o.json) console.log(JSON.stringify(users, null, 2));
      else
        for (const u of users)
          console.log(
            `${u.username}  ${u.agencyId}  ${u.roles.map(label).join(',') || '-'}${u.disabled ? '  disabled' : ''}  ${u.displayName}`,
          );
      return 0;
    }
    if (!username)
      throw new CitysenseError('CS_ERR_CONFIG_INVALID', `user ${action} needs a username\n${USAGE}`, 400);
    if (action === 'create') {
      if (!o.agency)
        throw new CitysenseError('CS_ERR_CONFIG_INVALID', 'user create needs --agency <id>', 400);
      const created = await client.request<UserView>('POST', '/v1/users', {
        username,
        displayName: o.displayName ?? username,
        agencyId: o.agency,
        password: needPassword(o),
        roles: o.role ? o.role.split(',').filter(Boolean).map(parseGrant) : [],
      });
      if (o.json) console.log(JSON.stringify(created, null, 2));
      else
        console.log(
          `user ${created.username} (${created.id}) created in ${created.agencyId}: ${created.roles.map(label).join(',') || 'no roles'}`,
        );
      return 0;
    }
    const [found] = await client.request<UserView[]>(
      'GET',
      `/v1/users?username=${encodeURIComponent(username)}`,
    );
    if (!found)
      throw new CitysenseError('CS_ERR_USER_UNKNOWN', `no user ${username}: see citysense user list`, 404);
    const path = `/v1/users/${encodeURIComponent(found.id)}`;
    if (action === 'passwd') {
      await client.request('PUT', `${path}/password`, { password: needPassword(o) });
      console.log(`password of ${username} changed; their sessions ended`);
      return 0;
    }
    if (!grant)
      throw new CitysenseError(
        'CS_ERR_CONFIG_INVALID',
        `user ${action} needs a role, e.g. reviewer:video`,
        400,
      );
    const g = parseGrant(grant);
    const updated =
      action === 'grant'
        ? await client.request<UserView>('POST', `${path}/roles`, g)
        : await client.request<UserView>(
            'DELETE',
            `${path}/roles/${encodeURIComponent(g.role)}${g.category ? `?category=${encodeURIComponent(g.category)}` : ''}`,
          );
    if (o.json) console.log(JSON.stringify(updated, null, 2));
    else console.log(`${updated.username}: ${updated.roles.map(label).join(',') || 'no roles'}`);
    return 0;
  },
};
