// keyward: a thin shell over @keyward/server (serve, migrate, init, secrets)
// and over a running server's HTTP API (token, verify, import). Each command parses
// its flags and exits 0 on success, 1 when something was refused, 2 on a
// usage mistake, with one line on stderr and never a secret.
import { keepSecret, redact } from './redact.ts';
import { importCommand } from './remote/import-command.ts';
import { tokenCommand } from './remote/token-commands.ts';
import { verifyCommand } from './remote/verify-command.ts';
import { UsageError, isUsageError } from './usage-error.ts';
import { CLI_VERSION } from './version.ts';

const USAGE = `keyward ${CLI_VERSION}: scoped, revocable API tokens

Usage: keyward <command> [options]

Commands on this machine:
  serve                 start the server (migrates the database first)
  migrate               bring the database schema to the latest version
  init                  create the first organization and its owner
      --email <email>         owner email (required)
      --password <password>   owner password, 12+ characters (or KEYWARD_ADMIN_PASSWORD)
      --org-name <name>       organization name (default "Default")
      --org-slug <slug>       organization slug (default "default")
  secrets new           print a fresh keyring entry for KEYWARD_SECRETS
      --version <label>       version label (default: one above the newest in KEYWARD_SECRETS, else v1)

Commands against a server (--url or KEYWARD_URL, default http://127.0.0.1:8080;
the credential in KEYWARD_TOKEN or --token-file):
  token create          create a token and print its secret once
  token list            list tokens (--all for every page)
  token get <id>        show one token
  token rotate <id>     replace a token's secret (--grace-seconds to keep the old one a while)
  token revoke <id>     revoke a token
  verify <token | ->    check a token as a resource server would (exit 0 valid, 1 not)
  import <file | ->     import existing API keys from JSON Lines (--dry-run to check first)
  Each takes --json for the server's JSON, and --help for its options.

Configuration comes from the environment (HOST, PORT, KEYWARD_DATA_DIR, DATABASE_URL,
KEYWARD_SECRETS, ...) and the optional keyward.config.json; see the README.

Exit status: 0 success (a valid token), 1 refused (an invalid token, a refused
request, an unreachable server), 2 usage error (bad flags, missing settings).

Options:
  -h, --help            show this help
  -v, --version         print the version
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (command === '-v' || command === '--version') {
    console.log(CLI_VERSION);
    return 0;
  }
  // The remote commands have their own help, and must not load the server package.
  if (command === 'token') return tokenCommand(rest, process.env);
  if (command === 'verify') return verifyCommand(rest, process.env);
  if (command === 'import') return importCommand(rest, process.env);
  if (rest.includes('-h') || rest.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  const local = await import('./local-commands.ts');
  switch (command) {
    case 'serve':
      local.noOptions(rest);
      await local.serve();
      return -1;
    case 'migrate':
      local.noOptions(rest);
      await local.migrate();
      return 0;
    case 'init':
      await local.init(rest);
      return 0;
    case 'secrets':
      if (rest[0] !== 'new') throw new UsageError(`unknown secrets command "${rest[0] ?? ''}"; try "keyward secrets new"`);
      local.secretsNew(rest.slice(1));
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"; run "keyward --help"`);
  }
}

/** The reason on one line, with anything secret cut out. */
function oneLine(error: unknown): string {
  const code = (error as { code?: string } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  let line = message.split('\n')[0] ?? '';
  // util.parseArgs appends advice about "--" positionals that does not help here.
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') line = `${line.split('. ')[0]}; see --help`;
  return redact(line) || 'failed';
}

/** A --token flag would leave the secret in shell history: refuse it before parsing, and say what to do instead. */
function refuseTokenFlag(argv: string[]): void {
  if (argv.some((arg) => arg === '--token' || arg.startsWith('--token='))) {
    throw new UsageError('there is no --token flag, so the secret stays out of shell history: set KEYWARD_TOKEN, or put it in a file and pass --token-file');
  }
}

/**
 * Runs the command line `argv` (without node and the script) and sets the
 * exit code; the entry (bin/keyward.js, or this file run directly) calls it.
 */
export function runFromCommandLine(argv: string[]): void {
  if (process.env.KEYWARD_TOKEN) keepSecret(process.env.KEYWARD_TOKEN.trim());
  // `keyward token list | head -1` closes the pipe early: that is the reader's choice, not a crash.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
  Promise.resolve()
    .then(() => {
      refuseTokenFlag(argv);
      return main(argv);
    })
    .then(
      (code) => {
        if (code >= 0) process.exitCode = code;
      },
      (error: unknown) => {
        console.error(`keyward: ${oneLine(error)}`);
        process.exitCode = isUsageError(error) ? 2 : 1;
      },
    );
}

if (import.meta.main) runFromCommandLine(process.argv.slice(2));
