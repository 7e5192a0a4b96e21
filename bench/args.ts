/** Command-line numbers of the bench's side tools: a bad one is refused, naming its option. */
export function positiveInteger(option: string, text: string | undefined): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${option} must be a positive integer (got ${text})`);
  return value;
}
