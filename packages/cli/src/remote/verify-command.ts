// keyward verify: ask the server what a resource server would be told about a
// token (POST /api/v1/verify). Exit 0 when valid, 1 when not, so scripts can branch on it.
import { parseArgs } from 'node:util';
import { parseRequireExpression, type VerifyCode } from '@keyward/core';
import { keepSecret } from '../redact.ts';
import { UsageError } from '../usage-error.ts';
import { parseId, parseWholeNumber } from './flag-values.ts';
import { CONNECTION_HELP, CONNECTION_OPTIONS, callServer, resolveConnection } from './server-connection.ts';
import { formatFields, formatInstant } from './text-output.ts';
import { describeResources, describeScopes } from './token-view.ts';

export const VERIFY_HELP = `Usage: keyward verify <token | -> [options]

Asks the server whether a token is valid, as a resource server would, and
prints the answer: the token's identity and effective rights, or why it is
refused. Exit 0 when valid, 1 when not (or when the request is refused), 2 on
a usage error.

Give the token as "-" to read it from stdin, which keeps it out of your shell
history and the process list:  keyward verify - < token.txt

The credential in KEYWARD_TOKEN (or --token-file) must hold keyward:verify.

Options:
  --scope <scope>       a scope the token must hold; repeat for more (all are needed)
  --require <expr>      a scope expression instead, e.g. "scans:read AND (clearances:read OR clearances:write)"
  --resource <id>       the resource the token would touch (res_…)
  --ip <address>        the address the token was presented from (for IP allowlists)
  --cost <credits>      credits to spend on a token with a usage quota (server default 1; 0 checks without spending)
${CONNECTION_HELP}
`;

/** Why a token is refused, in words; every code must have one. */
const REASONS: Record<Exclude<VerifyCode, 'VALID'>, string> = {
  MALFORMED: 'this is not a Keyward token (wrong format or checksum)',
  NOT_FOUND: 'no such token in this organization',
  EXPIRED: 'the token has expired',
  REVOKED: 'the token has been revoked',
  DISABLED: 'the token is disabled',
  INSUFFICIENT_SCOPE: 'the token lacks a required scope',
  FORBIDDEN_RESOURCE: 'the token may not touch this resource',
  IP_NOT_ALLOWED: 'the token may not be used from this address',
  RATE_LIMITED: "the token's rate limit is reached; try again later",
  USAGE_EXCEEDED: "the token's usage quota is spent",
};

interface VerifyAnswer {
  valid: boolean;
  code: VerifyCode;
  token?: {
    id: string;
    name: string;
    kind: 'personal' | 'client';
    owner: { type: string; id: string };
    organizationId: string;
    scopes: string[];
    permission: string;
    resources: Array<{ id: string; type: string; name: string }>;
    expiresAt: string | null;
  };
  rateLimit?: { limit: number; remaining: number; resetAt: string };
  remaining?: number;
}

// A token is at most 512 characters; anything longer on stdin is not one.
const MAX_STDIN_BYTES = 4096;

/** The first line of stdin: a pasted token ends with Enter, a piped one with end of input. */
async function readTokenFromStdin(): Promise<string> {
  // At a terminal, say what the wait is for; piped input needs no prompt.
  if (process.stdin.isTTY) process.stderr.write('Paste the token, then press Enter: ');
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n') || text.length > MAX_STDIN_BYTES) break;
  }
  process.stdin.destroy();
  return text.split(/\r?\n/)[0]?.trim() ?? '';
}

export async function verifyCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      ...CONNECTION_OPTIONS,
      scope: { type: 'string', multiple: true },
      require: { type: 'string' },
      resource: { type: 'string' },
      ip: { type: 'string' },
      cost: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    console.log(VERIFY_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('verify needs the token to check, or - to read it from stdin');
  if (positionals.length > 1) throw new UsageError('verify checks one token at a time; see keyward verify --help');
  const body: Record<string, unknown> = {};
  if (values.scope) body.scopes = values.scope;
  if (values.require !== undefined) {
    try {
      // The server's own parser: a malformed expression is the caller's mistake, found before any request.
      parseRequireExpression(values.require);
    } catch (error) {
      throw new UsageError(`--require: ${(error as Error).message.replace(/^require: /, '')}`);
    }
    body.require = values.require;
  }
  if (values.resource !== undefined) body.resource = parseId('--resource', values.resource);
  if (values.ip !== undefined) body.ip = values.ip;
  if (values.cost !== undefined) body.cost = parseWholeNumber('--cost', values.cost);
  const connection = resolveConnection(values, env, 'keyward:verify');

  const token = positionals[0] === '-' ? await readTokenFromStdin() : (positionals[0] ?? '');
  keepSecret(token);
  if (!token) throw new UsageError('verify read no token from stdin');
  if (token.length > 512) throw new UsageError('that is too long to be a token (at most 512 characters)');

  const answer = await callServer<VerifyAnswer>(connection, { method: 'POST', path: 'api/v1/verify', body: { token, ...body } });
  if (values.json) console.log(JSON.stringify(answer, null, 2));
  else console.log(describeAnswer(answer));
  return answer.valid ? 0 : 1;
}

function describeAnswer(answer: VerifyAnswer): string {
  if (!answer.valid || !answer.token) {
    const reason = answer.code === 'VALID' ? 'refused' : (REASONS[answer.code] ?? 'refused');
    return `${answer.code}: ${reason}`;
  }
  const token = answer.token;
  const fields: Array<[string, string]> = [
    ['token', `${token.id} "${token.name}"`],
    ['owner', `${token.owner.type} ${token.owner.id}`],
    ['scopes', describeScopes(token.scopes)],
    ['permission', token.permission],
    ['resources', describeResources(token.resources)],
    ['expires', formatInstant(token.expiresAt, 'never')],
  ];
  if (answer.remaining !== undefined) fields.push(['remaining', `${answer.remaining} credits`]);
  if (answer.rateLimit) fields.push(['rate limit', `${answer.rateLimit.remaining} of ${answer.rateLimit.limit} left until ${formatInstant(answer.rateLimit.resetAt, '-')}`]);
  return `VALID\n${formatFields(fields)}`;
}
