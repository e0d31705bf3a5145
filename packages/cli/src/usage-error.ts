/** A mistake in how the command was called (flags, arguments, environment): exit 2, not 1. */
export class UsageError extends Error {}

/** Whether an error is a usage mistake: ours, or a flag `util.parseArgs` refused. */
export function isUsageError(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'));
}
