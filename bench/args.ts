/** Command-line numbers of the bench's side tools: a bad one is refused, naming its option. */
export function positiveInteger(option: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${option} must be a positive integer (got ${text})`);
  return value;
}

/**
 * The command line a report names: NODE_OPTIONS included, since it reaches
 * every child process (each system's consumers alike) and changes what a run
 * measures, e.g. V8's young generation with --max-semi-space-size.
 */
export function benchCommand(args: readonly string[], nodeOptions: string | undefined): string {
  const env = nodeOptions?.trim() ? `NODE_OPTIONS='${nodeOptions.trim()}' ` : '';
  return `${env}npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
}
