// How the remote commands reach a Keyward server: the URL, the bearer
// credential (from the environment or a file, never a flag value that would
// land in shell history), and one fetch wrapper that turns every failure into
// one line: a refused request (exit 1) or a usage mistake (exit 2).
import { readFileSync } from 'node:fs';
import { keepSecret } from '../redact.ts';
import { UsageError } from '../usage-error.ts';
import { CLI_VERSION } from '../version.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';
// Long enough for a slow server, short enough that a script does not hang on a black hole.
const REQUEST_TIMEOUT_MS = 30_000;

/** The flags every remote command takes. */
export const CONNECTION_OPTIONS = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const CONNECTION_HELP = `  --url <url>           the Keyward server (default: KEYWARD_URL, else ${DEFAULT_URL})
  --token-file <path>   read the credential from this file instead of KEYWARD_TOKEN
  --json                print the server's JSON instead of text
  -h, --help            show this help`;

export interface Connection {
  baseUrl: URL;
  credential: string;
}

/** A request the server (or the network) refused: exit 1, with a one-line reason. */
export class RequestRefusedError extends Error {
  /** The HTTP status and problem body, when the server answered one (import maps field errors back to lines). */
  readonly status: number | null;
  readonly problem: unknown;
  constructor(message: string, answer: { status: number; problem: unknown } | null = null) {
    super(message);
    this.status = answer?.status ?? null;
    this.problem = answer?.problem ?? null;
  }
}

export interface ConnectionFlags {
  url?: string | undefined;
  'token-file'?: string | undefined;
}

/**
 * Reads the server URL and the credential. `needs` names what the credential
 * must hold, for the message when there is none.
 */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv, needs: string): Connection {
  // An empty KEYWARD_URL is an unset one, as shells and .env files often leave it.
  const baseUrl = parseServerUrl(flags.url ?? (env.KEYWARD_URL || DEFAULT_URL), flags.url !== undefined ? '--url' : 'KEYWARD_URL');
  const credential = flags['token-file'] !== undefined ? readTokenFile(flags['token-file']) : env.KEYWARD_TOKEN?.trim();
  if (!credential) throw new UsageError(`set KEYWARD_TOKEN (or --token-file) to a token with ${needs}`);
  if (!/^[!-~]{1,512}$/.test(credential)) throw new UsageError(`${flags['token-file'] !== undefined ? '--token-file' : 'KEYWARD_TOKEN'} must hold one token, without spaces`);
  keepSecret(credential);
  return { baseUrl, credential };
}

function parseServerUrl(text: string, source: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${source} is not a URL; expected e.g. ${DEFAULT_URL}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${source} must be an http:// or https:// URL`);
  // Credentials belong in KEYWARD_TOKEN; a URL is printed in messages and kept in shell history.
  if (url.username || url.password) throw new UsageError(`${source} must not carry a user name or password`);
  if (url.search || url.hash) throw new UsageError(`${source} must be the server's base URL, without a query or fragment`);
  // Resolve API paths below the base path, so a server published under a prefix works too.
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--token-file: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  const credential = text.trim();
  if (!credential) throw new UsageError(`--token-file: ${path} is empty`);
  return credential;
}

export interface ServerRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
}

/** Calls the server; answers the parsed JSON (null for 204), or throws RequestRefusedError with one line. */
export async function callServer<T>(connection: Connection, request: ServerRequest): Promise<T> {
  const url = new URL(request.path, connection.baseUrl);
  for (const [name, value] of Object.entries(request.query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value));
  const headers: Record<string, string> = {
    authorization: `Bearer ${connection.credential}`,
    accept: 'application/json, application/problem+json',
    'user-agent': `keyward-cli/${CLI_VERSION}`,
  };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers,
      ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
      // A redirect would carry the credential (and a token being verified) to wherever it points.
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new RequestRefusedError(`cannot reach the Keyward server at ${connection.baseUrl.origin}: ${networkReason(error)}; check --url or KEYWARD_URL`);
  }
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel();
    const location = response.headers.get('location');
    throw new RequestRefusedError(`the server at ${connection.baseUrl.origin} redirects${location ? ` to ${location}` : ''}; set --url or KEYWARD_URL to the address it should be`);
  }
  if (response.status === 204) return null as T;
  const body = await readJson(response);
  if (!response.ok) throw new RequestRefusedError(refusalOf(response, body), { status: response.status, problem: body });
  if (body === undefined) throw new RequestRefusedError(`the server at ${connection.baseUrl.origin} answered ${response.status} without JSON; is --url a Keyward server?`);
  return body as T;
}

async function readJson(response: Response): Promise<unknown> {
  const type = response.headers.get('content-type') ?? '';
  const text = await response.text();
  if (!/^application\/(?:problem\+)?json\b/i.test(type)) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

interface Problem {
  title?: unknown;
  detail?: unknown;
  code?: unknown;
  errors?: Array<{ field?: unknown; message?: unknown }>;
}

/** One line from an RFC 9457 problem: its title and detail, or the field errors of a validation failure. */
function refusalOf(response: Response, body: unknown): string {
  const problem = (typeof body === 'object' && body !== null ? body : {}) as Problem;
  const title = typeof problem.title === 'string' ? problem.title : `the server answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  const fields = Array.isArray(problem.errors) ? problem.errors.map((error) => `${String(error.field)}: ${String(error.message)}`) : [];
  const detail = fields.length > 0 ? fields.join('; ') : typeof problem.detail === 'string' ? problem.detail : '';
  let line = detail && detail !== title ? `${title}: ${detail}` : title;
  if (typeof problem.code === 'string') line += ` (${problem.code})`;
  const retryAfter = response.headers.get('retry-after');
  if (response.status === 429 && retryAfter) line += `; retry after ${retryAfter} s`;
  if (response.status === 401) line += '; check the token in KEYWARD_TOKEN (or --token-file)';
  return line.replace(/\s+/g, ' ');
}

function networkReason(error: unknown): string {
  if ((error as Error | null)?.name === 'TimeoutError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = (error as { cause?: { code?: string; message?: string } } | null)?.cause;
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'connection refused (is the server running?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'the connection was closed';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'the connection timed out';
    default:
      return cause?.code ?? cause?.message?.split('\n')[0] ?? (error as Error).message.split('\n')[0] ?? 'network error';
  }
}
