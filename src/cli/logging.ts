/**
 * The CLI's pino logger: pretty on a terminal, JSON lines otherwise, and
 * JSON lines to --logfile as well. Embedders pass their own logger instead.
 */
import pino, { type Logger, type Level } from 'pino';
import pinoPretty from 'pino-pretty';
import { mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../shared/errors.js';
import { prettyLine } from './pretty-line.js';

export interface LoggerOptions {
  /** 0 warn, 1 info (default), 2 debug. */
  verbosity?: number;
  /** Also append JSON lines to this file. */
  logfile?: string;
  /** Pretty-print to stdout. Default: stdout is a terminal. */
  pretty?: boolean;
}

/** pino-pretty options for one line per event (see pretty-line.ts); exported for the test. */
export const PRETTY_ONE_LINE = {
  ignore: 'pid,hostname,name',
  hideObject: true,
  messageFormat: (log: Record<string, unknown>) => prettyLine(log),
} as const;

export const VERBOSITY_LEVELS: readonly Level[] = ['warn', 'info', 'debug'];

export interface CliLogger {
  logger: Logger;
  /** Flushes the file destination; call before the process exits. */
  flush: () => void;
}

export function createCliLogger({ verbosity = 1, logfile, pretty = Boolean(process.stdout.isTTY) }: LoggerOptions = {}): CliLogger {
  const level = VERBOSITY_LEVELS[Math.max(0, Math.min(2, verbosity))]!;
  const console = pretty
    ? pinoPretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ...PRETTY_ONE_LINE })
    : pino.destination({ dest: 1, sync: false });
  const streams: pino.StreamEntry[] = [{ level, stream: console }];
  if (logfile) {
    let fd: number;
    try {
      mkdirSync(path.dirname(path.resolve(logfile)), { recursive: true });
      fd = openSync(logfile, 'a');
    } catch (error) {
      throw new ConfigError(`cannot open log file ${logfile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const file = pino.destination({ dest: fd, sync: false });
    file.on('error', () => {}); // a full disk must not crash the consumer; the console still has the logs
    streams.push({ level, stream: file });
  }
  const logger = pino({ name: 'taskmill', level }, pino.multistream(streams));
  return {
    logger,
    flush() {
      for (const { stream } of streams) {
        const s = stream as { flushSync?: () => void };
        try {
          s.flushSync?.();
        } catch {
          // sonic-boom throws if not ready yet; nothing buffered then
        }
      }
    },
  };
}
