/**
 * What the CLI's pretty output says of one log event: the message and its
 * fields on ONE line, and for an error its message and the stack frames that
 * belong to the user's code — not taskmill's, xstate's or Node's own frames,
 * which are the same for every failure and pushed the cause off the screen.
 * Files and pipes keep pino's JSON lines; this is for a person at a terminal.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Fields pino-pretty prints itself, or that say nothing to a person watching. */
const OWN_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'err', 'error']);
/** How many of the user's frames a failure shows. */
const MAX_FRAMES = 5;

/** taskmill's own directory (src/ or dist/, one up from this cli/ folder): its frames are not the user's. */
const TASKMILL_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url))) + path.sep;

/** The frames of `stack` that are the user's: not taskmill's, not node_modules', not Node's internals. */
export function ownFrames(stack: string, taskmillDir = TASKMILL_DIR): string[] {
  // ESM frames name their file by URL, CommonJS ones by path.
  const taskmillUrl = pathToFileURL(taskmillDir).href;
  return stack
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at '))
    .filter((line) => {
      const location = line.replace(/^at (?:async )?/, '');
      if (/node:internal|node_modules|\(<anonymous>\)$|^<anonymous>$/.test(location)) return false;
      return !location.includes(taskmillDir) && !location.includes(taskmillUrl);
    })
    .slice(0, MAX_FRAMES);
}

function shown(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value === undefined) return 'undefined';
  // JSON.stringify gives undefined for a function or a symbol.
  return JSON.stringify(value) ?? (typeof value === 'function' ? `[function ${value.name}]` : typeof value === 'symbol' ? value.toString() : typeof value);
}

interface LoggedError {
  type?: unknown;
  message?: unknown;
  stack?: unknown;
}

/** `msg key=value …`, then for an error ` err="Type: message"` and the user's frames, indented. */
export function prettyLine(log: Record<string, unknown>): string {
  const fields = Object.entries(log)
    .filter(([key]) => !OWN_FIELDS.has(key))
    .map(([key, value]) => `${key}=${shown(value)}`);
  let line = [typeof log.msg === 'string' ? log.msg : '', ...fields].filter(Boolean).join(' ');
  const error = (log.err ?? log.error) as LoggedError | string | undefined;
  if (typeof error === 'string') return `${line} err=${shown(error)}`;
  if (error && typeof error === 'object') {
    const type = typeof error.type === 'string' ? error.type : 'Error';
    const message = typeof error.message === 'string' ? error.message : '';
    line += ` err=${shown(message ? `${type}: ${message}` : type)}`;
    const frames = typeof error.stack === 'string' ? ownFrames(error.stack) : [];
    if (frames.length > 0) line += `\n${frames.map((frame) => `    ${frame}`).join('\n')}`;
  }
  return line;
}
