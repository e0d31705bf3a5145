// keyward token create|list|get|rotate|revoke: the lifecycle API (SPEC §3) from a terminal or a script.
import { parseArgs } from 'node:util';
import { UsageError } from '../usage-error.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS, callServer, resolveConnection, type Connection } from './server-connection.ts';
import { parseId, parseMetadata, parseRateLimit, parseRefill, parseTokenId, parseWholeNumber } from './flag-values.ts';
import { formatInstant, formatSecret, formatTable } from './text-output.ts';
import { describeScopes, formatToken, type IssuedTokenView, type TokenView } from './token-view.ts';

export const TOKEN_HELP = `Usage: keyward token <command> [options]

Manage API tokens on a Keyward server. The credential comes from KEYWARD_TOKEN
(or --token-file), never from a flag, so it stays out of shell history.

Commands:
  create      create a token and print its secret, once
  list        list tokens as a table
  get <id>    show one token ("current" for the token in KEYWARD_TOKEN)
  rotate <id> replace a token with a new secret, optionally keeping the old one valid a while
  revoke <id> revoke a token, at once and for good

Run "keyward token <command> --help" for its options.
`;

const CREATE_HELP = `Usage: keyward token create --name <name> [options]

Creates a personal token (yours), or with --client a service token of an API
client, and prints its secret once. Needs a token with tokens:write (and
clients:manage for --client).

Options:
  --name <name>              name, unique among your live tokens (letters, digits, space . _ -)
  --scope <scope>            a scope to grant; repeat for more (default: the catalog's default preset)
  --resource <id>            a resource to limit the token to; repeat for more, in rank order
                             (the first that applies wins; none = every resource you can access)
  --permission <role>        viewer, member, admin or owner (at most your own)
  --expires-in-days <days>   lifetime in days (default: the organization's policy)
  --no-expiry                never expires, where the organization allows it
  --client <id>              create a service token of this API client (cli_…)
  --allow-ip <cidr>          accept the token only from this address or range; repeat for more
  --rate-limit <n/window>    at most n verifications per window, e.g. 100/60s, 1000/1h
  --remaining <credits>      a usage quota: verifications left before USAGE_EXCEEDED
  --refill <n/interval>      top the quota up to n, e.g. 1000/daily or 1000/monthly
  --metadata <key=value>     a metadata entry; repeat for more
${CONNECTION_HELP}

Example:
  keyward token create --name "ci deploy" --scope scans:read --scope scans:write --expires-in-days 90
`;

const LIST_HELP = `Usage: keyward token list [options]

Lists your tokens (name, hint, kind, status, scopes, last use, expiry), newest
first, one page at a time. Never shows a secret. Needs tokens:read.

Options:
  --status <status>     active, expired, revoked or disabled
  --kind <kind>         personal or client
  --client <id>         the service tokens of this API client (cli_…)
  --org                 every token of the organization, not only yours (admin, tokens:manage)
  --limit <n>           tokens per page, 1-100 (default 50)
  --cursor <cursor>     the page after this cursor (printed under a full page)
  --all                 follow the cursors and list every page
${CONNECTION_HELP}
`;

const GET_HELP = `Usage: keyward token get <id>

Shows one token: scopes, resources, limits, status, expiry and last use. The
id "current" shows the token in KEYWARD_TOKEN itself, with what it may do now.
Needs tokens:read (none for "current").

Options:
${CONNECTION_HELP}
`;

const ROTATE_HELP = `Usage: keyward token rotate <id> [--grace-seconds <s>]

Issues a new token (new id, new secret) with the same name, scopes, resources
and settings, and prints its secret once. The old secret stops working at once,
or after the grace period. Rotating a token twice, or using its old secret
after the grace period, revokes both. Needs tokens:write.

Options:
  --grace-seconds <s>   keep the old secret valid this long, 0-86400 (default 0)
${CONNECTION_HELP}
`;

const REVOKE_HELP = `Usage: keyward token revoke <id>

Revokes a token at once, everywhere; it cannot be undone. Asks nothing, so it
suits scripts: check the id first with "keyward token get <id>". Prints nothing
with --json; the exit code says whether it worked. Needs tokens:write.

Options:
${CONNECTION_HELP}
`;

function print(text: string): void {
  console.log(text);
}

function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

// Unknown flags are errors; positionals are counted by each command.
const PARSING = { strict: true, allowPositionals: true } as const;

/** Prints the help when asked for; answers whether it was. */
function helped(values: { help?: boolean | undefined }, help: string): boolean {
  if (values.help) print(help);
  return Boolean(values.help);
}

function atMost(positionals: string[], count: number): void {
  if (positionals.length > count) throw new UsageError(count === 0 ? 'this command takes no arguments; see --help' : 'too many arguments; see --help');
}

async function create(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    ...PARSING,
    args,
    options: {
      ...CONNECTION_OPTIONS,
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      resource: { type: 'string', multiple: true },
      permission: { type: 'string' },
      'expires-in-days': { type: 'string' },
      'no-expiry': { type: 'boolean' },
      client: { type: 'string' },
      'allow-ip': { type: 'string', multiple: true },
      'rate-limit': { type: 'string' },
      remaining: { type: 'string' },
      refill: { type: 'string' },
      metadata: { type: 'string', multiple: true },
    },
  });
  if (helped(values, CREATE_HELP)) return 0;
  atMost(positionals, 0);
  if (values.name === undefined) throw new UsageError('token create needs --name');
  if (values['expires-in-days'] !== undefined && values['no-expiry']) throw new UsageError('give --expires-in-days or --no-expiry, not both');
  const body: Record<string, unknown> = { name: values.name };
  if (values.scope) body.scopes = values.scope;
  if (values.resource) body.resources = values.resource.map((id) => parseId('--resource', id));
  if (values.permission !== undefined) body.permission = values.permission;
  if (values['expires-in-days'] !== undefined) body.expiresInDays = parseWholeNumber('--expires-in-days', values['expires-in-days'], 1);
  if (values['no-expiry']) body.expiresInDays = null;
  if (values['allow-ip']) body.allowedIps = values['allow-ip'];
  if (values['rate-limit'] !== undefined) body.rateLimit = parseRateLimit(values['rate-limit']);
  if (values.remaining !== undefined) body.remaining = parseWholeNumber('--remaining', values.remaining);
  if (values.refill !== undefined) body.refill = parseRefill(values.refill);
  if (values.metadata) body.metadata = parseMetadata(values.metadata);
  const clientId = values.client === undefined ? undefined : parseId('--client', values.client);
  const connection = resolveConnection(values, env, clientId ? 'clients:manage' : 'tokens:write');

  const issued = await callServer<IssuedTokenView>(connection, { method: 'POST', path: clientId ? `api/v1/clients/${clientId}/tokens` : 'api/v1/tokens', body });
  if (values.json) {
    printJson(issued);
    return 0;
  }
  const kind = issued.kind === 'client' ? `service token of ${issued.owner.id}` : 'personal token';
  print(`Created ${kind} "${issued.name}" (${issued.id}), ${issued.expiresAt ? `expires ${formatInstant(issued.expiresAt, '')}` : 'never expires'}.`);
  print(`Scopes: ${describeScopes(issued.scopes)}`);
  print(formatSecret(issued.token));
  return 0;
}

interface TokenPage {
  items: TokenView[];
  nextCursor: string | null;
}

async function list(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    ...PARSING,
    args,
    options: {
      ...CONNECTION_OPTIONS,
      status: { type: 'string' },
      kind: { type: 'string' },
      client: { type: 'string' },
      org: { type: 'boolean' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      all: { type: 'boolean' },
    },
  });
  if (helped(values, LIST_HELP)) return 0;
  atMost(positionals, 0);
  if (values.status !== undefined && !['active', 'expired', 'revoked', 'disabled'].includes(values.status)) throw new UsageError('--status must be active, expired, revoked or disabled');
  if (values.kind !== undefined && !['personal', 'client'].includes(values.kind)) throw new UsageError('--kind must be personal or client');
  const limit = values.limit === undefined ? undefined : parseWholeNumber('--limit', values.limit, 1);
  if (limit !== undefined && limit > 100) throw new UsageError('--limit must be at most 100');
  const query = {
    status: values.status,
    kind: values.kind,
    client: values.client === undefined ? undefined : parseId('--client', values.client),
    all: values.org ? true : undefined,
    // Fewer round trips when following every cursor.
    limit: limit ?? (values.all ? 100 : undefined),
  };
  const connection = resolveConnection(values, env, 'tokens:read');

  const page = await fetchPages(connection, query, values.cursor, Boolean(values.all));
  if (values.json) {
    printJson(page);
    return 0;
  }
  if (page.items.length === 0) {
    print('No tokens.');
    return 0;
  }
  const rows = page.items.map((token) => [
    token.id,
    token.name,
    token.hint,
    token.kind,
    token.status,
    describeScopes(token.scopes),
    formatInstant(token.lastUsedAt, 'never'),
    formatInstant(token.expiresAt, 'never'),
  ]);
  print(formatTable(['ID', 'NAME', 'HINT', 'KIND', 'STATUS', 'SCOPES', 'LAST USED', 'EXPIRES'], rows));
  if (page.nextCursor) print(`\nMore tokens: add --cursor ${page.nextCursor} (or --all for every page).`);
  return 0;
}

/** One page, or with `all` every page from `cursor` on, as one list. */
async function fetchPages(connection: Connection, query: Record<string, string | number | boolean | undefined>, cursor: string | undefined, all: boolean): Promise<TokenPage> {
  const items: TokenView[] = [];
  const seen = new Set<string>();
  let next = cursor;
  for (;;) {
    const page = await callServer<TokenPage>(connection, { method: 'GET', path: 'api/v1/tokens', query: { ...query, cursor: next } });
    items.push(...page.items);
    if (!all || page.nextCursor === null) return { items, nextCursor: page.nextCursor };
    // A server that hands back a cursor it already gave would otherwise page forever.
    if (seen.has(page.nextCursor)) throw new UsageError('the server repeated a page cursor; list without --all');
    seen.add(page.nextCursor);
    next = page.nextCursor;
  }
}

async function get(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({ ...PARSING, args, options: CONNECTION_OPTIONS });
  if (helped(values, GET_HELP)) return 0;
  atMost(positionals, 1);
  const id = positionals[0] === 'current' ? 'current' : parseTokenId('token get', positionals[0]);
  const connection = resolveConnection(values, env, id === 'current' ? 'any scope' : 'tokens:read');
  const token = await callServer<TokenView>(connection, { method: 'GET', path: `api/v1/tokens/${id}` });
  if (values.json) printJson(token);
  else print(formatToken(token));
  return 0;
}

async function rotate(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({ ...PARSING, args, options: { ...CONNECTION_OPTIONS, 'grace-seconds': { type: 'string' } } });
  if (helped(values, ROTATE_HELP)) return 0;
  atMost(positionals, 1);
  const id = parseTokenId('token rotate', positionals[0]);
  const graceSeconds = values['grace-seconds'] === undefined ? undefined : parseWholeNumber('--grace-seconds', values['grace-seconds']);
  if (graceSeconds !== undefined && graceSeconds > 86_400) throw new UsageError('--grace-seconds must be at most 86400 (one day)');
  const connection = resolveConnection(values, env, 'tokens:write');

  const issued = await callServer<IssuedTokenView>(connection, {
    method: 'POST',
    path: `api/v1/tokens/${id}/rotate`,
    body: graceSeconds === undefined ? {} : { gracePeriodSeconds: graceSeconds },
  });
  if (values.json) {
    printJson(issued);
    return 0;
  }
  print(`Rotated ${id} into ${issued.id} "${issued.name}", ${issued.expiresAt ? `expires ${formatInstant(issued.expiresAt, '')}` : 'never expires'}.`);
  print(
    graceSeconds
      ? `The old secret keeps working for ${graceSeconds} s (never past its own expiry); using it after that revokes both.`
      : 'The old secret no longer works; using it again revokes the new one too.',
  );
  print(formatSecret(issued.token));
  return 0;
}

async function revoke(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({ ...PARSING, args, options: CONNECTION_OPTIONS });
  if (helped(values, REVOKE_HELP)) return 0;
  atMost(positionals, 1);
  const id = parseTokenId('token revoke', positionals[0]);
  const connection = resolveConnection(values, env, 'tokens:write');
  await callServer<null>(connection, { method: 'DELETE', path: `api/v1/tokens/${id}` });
  if (!values.json) print(`Revoked ${id}.`);
  return 0;
}

const COMMANDS: Record<string, (args: string[], env: NodeJS.ProcessEnv) => Promise<number>> = { create, list, get, rotate, revoke };

export async function tokenCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    print(TOKEN_HELP);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(`unknown token command "${name}"; run "keyward token --help"`);
  return command(rest, env);
}
