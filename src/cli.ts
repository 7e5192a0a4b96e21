#!/usr/bin/env node
/**
 * The `taskmill` command line. Parsing is commander's; this file only maps
 * options onto the library and owns the process: signals and exit codes.
 *
 * Exit codes: 0 clean stop · 1 startup error (bad option, bad URL,
 * unreachable backend) · 2 stop was forced (running commands aborted) ·
 * 3 the consumer failed while running (e.g. restart limit).
 */
// First: publishes this instance for CommonJS command modules (see index.cts).
import './index.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createRequire } from 'node:module';
import { autodiscover, importModule } from './producer/autodiscover.js';
import { registry } from './producer/registry.js';
import { getSettings } from './producer/settings.js';
import { createConsumer, type Consumer } from './consumer/consumer.js';
import { createQueue } from './backends/index.js';
import { validateQueueName, type BaseQueue } from './backends/base.js';
import { defaultQueueUrl, redactText, redactUrl } from './shared/config.js';
import { encodeMessage } from './codec/message.js';
import { retryFailed } from './producer/admin.js';
import { createCliLogger } from './cli/logging.js';
import { FLAGS, argParser, parsePool } from './cli/flags.js';
import { createInspectLog, startInspector, type InspectLog, type InspectorRelay } from './inspect/index.js';
import { serveMetrics, type MetricsServer } from './observability/metrics-server.js';
import { runDashboard } from './cli/dashboard.js';
import { TaskmillError } from './shared/errors.js';
import { EXPECTED, invalidOption } from './shared/options.js';
import type { Pool } from './pool/kinds.js';

const EXIT = { ok: 0, startup: 1, forced: 2, failed: 3 } as const;

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** A startup problem: printed as one line, no stack. */
class CliError extends Error {}

function queueUrlOf(option: string | undefined): string {
  const configured = getSettings().queue;
  return option ?? (typeof configured === 'string' ? configured : undefined) ?? defaultQueueUrl();
}

/** Opens the queue named by -q (or the default) for the admin subcommands. */
async function withQueue<T>(url: string, name: string | undefined, fn: (queue: BaseQueue) => Promise<T>): Promise<T> {
  // A one-shot command reports failure through its error; backend outage warnings would only repeat it.
  const queue = createQueue(url, { onWarning: () => {}, ...(name !== undefined ? { name } : {}) });
  try {
    await queue.open();
    return await fn(queue);
  } finally {
    await queue.close().catch(() => {});
  }
}

async function loadModules(modules: string[]): Promise<string[]> {
  if (modules.length === 0) return autodiscover();
  for (const module of modules) await importModule(module);
  return modules;
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

const queueOption = () => new Option('-q, --queue <url>', 'queue URL (default: $TASKMILL_QUEUE or sqlite:taskmill.sqlite)');

/** A queue name, checked as the backends check it (the message names the flag). */
function queueName(flag: string) {
  return (value: string): string => {
    try {
      return validateQueueName(value, `${flag} queue name`);
    } catch (error) {
      throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
    }
  };
}
/** -Q NAME for the admin commands: one queue of the server -q names. */
const queueNameOption = () => new Option('-Q, --queue-name <name>', 'the queue on that server (default: default)').argParser(queueName('-Q'));

async function consume(modules: string[], opts: Record<string, unknown>): Promise<number> {
  const { logger, flush } = createCliLogger({
    verbosity: opts.verbosity as number,
    ...(opts.logfile ? { logfile: opts.logfile as string } : {}),
  });
  const loaded = await loadModules(modules);
  const url = queueUrlOf(opts.queue as string | undefined);
  const consumer: Consumer = createConsumer({
    queue: url,
    ...(opts.queues ? { queues: opts.queues as string[] } : {}),
    workers: opts.threads as number,
    periodic: opts.periodic as boolean,
    logger,
    pollDelayMs: (opts.delay as number) * 1000,
    pollBackoff: opts.backoff as number,
    maxPollDelayMs: (opts.maxDelay as number) * 1000,
    drainTimeoutMs: (opts.grace as number) * 1000,
    prefetch: opts.prefetch as number,
    openTimeoutMs: (opts.connectTimeout as number) * 1000,
    leaseMs: (opts.lease as number) * 1000,
    maxDeliveries: opts.maxDeliveries as number,
    metrics: opts.metrics !== undefined,
    pool: opts.pool as Pool,
    // A pool's threads and processes import what this process imported.
    modules: loaded,
    ...(opts.poolMemory !== undefined ? { poolMemoryMb: opts.poolMemory as number } : {}),
  });
  let relay: InspectorRelay | null = null;
  let metricsServer: MetricsServer | null = null;
  let inspectLog: InspectLog | null = null;
  const closeInspection = async () => {
    await relay?.close();
    await metricsServer?.close();
    await inspectLog?.close().catch((error: unknown) => logger.warn({ err: error }, 'inspect log incomplete'));
  };
  try {
    if (opts.inspectLog) inspectLog = createInspectLog(opts.inspectLog as string);
    if (opts.inspect !== undefined) relay = await startInspector({ port: opts.inspect as number });
    if (opts.metrics !== undefined) metricsServer = await serveMetrics(consumer.metrics!, opts.metrics as number);
  } catch (error) {
    await closeInspection();
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
  inspectLog?.attach(consumer.actor);
  relay?.attach(consumer.actor);
  // On stderr, not in the logs: the URL carries the relay's access token.
  if (relay) process.stderr.write(`taskmill: watch this consumer in the Stately inspector: open ${relay.url}\n`);
  if (metricsServer) logger.info({ url: metricsServer.url }, 'serving Prometheus metrics');
  logger.info({ queue: redactUrl(url), modules: loaded, commands: registry.names() }, 'starting consumer');
  if (registry.names().length === 0) logger.warn('no commands registered: pass command modules or add a commands.{ts,js,mjs,cjs,mts,cts} file');

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      logger.info({ signal }, 'stopping: draining (send the signal again to force)');
      void consumer.stop();
    } else {
      logger.warn({ signal }, 'second signal: forcing stop');
      consumer.actor.send({ type: 'FORCE' });
    }
  };
  const onHup = () => {
    const snapshot = consumer.actor.getSnapshot();
    const children = Object.entries(snapshot.children).map(([id, child]) => {
      const s = child?.getSnapshot() as { value?: unknown; status?: string } | undefined;
      return `${id}:${JSON.stringify(s?.value ?? s?.status)}`;
    });
    const reader = snapshot.children.reader?.getSnapshot() as { context?: { inFlight: number; buffer: unknown[] } } | undefined;
    logger.info(
      {
        state: snapshot.value,
        restarts: snapshot.context.restarts,
        failures: snapshot.context.failures,
        periodic: snapshot.context.periodicCommands.length,
        inFlight: reader?.context?.inFlight ?? 0,
        buffered: reader?.context?.buffer.length ?? 0,
        actors: children,
      },
      'snapshot',
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onHup);
  try {
    await consumer.start();
  } catch (error) {
    flush();
    await closeInspection();
    if (signals > 0) {
      // Stopped by a signal while still waiting for the backend: a clean stop, not a startup error.
      const result = await consumer.done.catch(() => ({ forced: false }));
      return result.forced ? EXIT.forced : EXIT.ok;
    }
    throw new CliError(`cannot start consumer on ${redactUrl(url)}: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    const { forced } = await consumer.done;
    flush();
    if (forced) {
      // A forced stop released the leases of commands that ignored their signal: do not let them run on.
      await closeInspection();
      process.exit(EXIT.forced);
    }
    return EXIT.ok;
  } catch (error) {
    logger.error({ err: error }, 'consumer failed');
    flush();
    await closeInspection();
    process.exit(EXIT.failed);
  } finally {
    await closeInspection();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onHup);
  }
}

export function buildProgram(): Command {
  const program = new Command('taskmill')
    .description('A task queue for Node.js built as an actor system on xstate.')
    .version(version)
    .configureOutput({ outputError: (text, write) => write(`${redactText(text).trimEnd()} (run with --help for usage)\n`) });

  program
    .command('consume')
    .description('run a consumer in the foreground')
    .argument('[modules...]', 'command modules to import (default: autodiscover commands.{js,mjs,cjs,ts,mts,cts} below the current directory)')
    .addOption(queueOption())
    .option(
      '-Q, --queues <names>',
      'queues on that server to read, in strict order: a,b reads b only while a has nothing ready (default: default)',
      (value: string) => {
        const names = value.split(',').map((name) => name.trim());
        return names.map(queueName('-Q'));
      },
    )
    .option('-t, --threads <n>', 'worker actors', argParser(FLAGS.threads), FLAGS.threads.default)
    .option(
      '--pool <kind>',
      'where commands run: inline (this event loop), threads (a worker thread per worker), processes (a child process per worker)',
      parsePool,
      'inline',
    )
    .option('--pool-memory <MB>', 'heap limit of each pool thread or process (a command that needs more fails as "worker lost")', argParser(FLAGS.poolMemory))
    .option('-n, --no-periodic', 'do not run the periodic scheduler')
    .option('-l, --logfile <file>', 'also write JSON logs to FILE')
    .option('-v, --verbosity <n>', 'log level: 0 warn, 1 info, 2 debug', argParser(FLAGS.verbosity), FLAGS.verbosity.default)
    .option('-d, --delay <seconds>', 'first poll interval of an empty polling queue', argParser(FLAGS.delay), FLAGS.delay.default)
    .option('-b, --backoff <factor>', 'poll interval growth when empty', argParser(FLAGS.backoff), FLAGS.backoff.default)
    .option('-m, --max-delay <seconds>', 'poll interval ceiling', argParser(FLAGS.maxDelay), FLAGS.maxDelay.default)
    .option('-g, --grace <seconds>', 'how long a stop waits for running commands before forcing', argParser(FLAGS.grace), FLAGS.grace.default)
    .option('-p, --prefetch <n>', 'messages read ahead of idle workers', argParser(FLAGS.prefetch), FLAGS.prefetch.default)
    .option(
      '--lease <seconds>',
      'how long a read message is leased before another consumer may take it (kept alive while it runs)',
      argParser(FLAGS.lease),
      FLAGS.lease.default,
    )
    .option(
      '--max-deliveries <n>',
      'deliveries without an outcome (the consumer died) before a job fails as "worker lost"',
      argParser(FLAGS.maxDeliveries),
      FLAGS.maxDeliveries.default,
    )
    .addOption(
      new Option('--inspect [port]', `serve the live actors to the Stately inspector on 127.0.0.1 (default port ${FLAGS.inspect.default}; 0: any free port)`)
        .preset(String(FLAGS.inspect.default))
        .argParser(argParser(FLAGS.inspect)),
    )
    .option('--metrics <port>', 'serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0: any free port)', argParser(FLAGS.metrics))
    .option('--inspect-log <file>', 'append the sanitised inspection stream to FILE as JSON lines')
    .option(
      '--connect-timeout <seconds>',
      'how long to wait for an unreachable backend at start before exiting 1',
      argParser(FLAGS.connectTimeout),
      FLAGS.connectTimeout.default,
    )
    .action(async (modules: string[], opts: Record<string, unknown>) => {
      const [delay, maxDelay] = [opts.delay as number, opts.maxDelay as number];
      if (maxDelay < delay) throw invalidOption('', '--max-delay', maxDelay, `${EXPECTED.seconds(delay)} (--delay)`);
      process.exitCode = await consume(modules, opts);
    });

  program
    .command('enqueue')
    .description('enqueue a command by name with JSON arguments')
    .argument('<name>', 'command name')
    .argument('[args]', 'a JSON array of arguments', '[]')
    .addOption(queueOption())
    .addOption(queueNameOption())
    .option('-M, --module <file...>', 'command modules that must define NAME (checked before anything is written)')
    .action(async (name: string, rawArgs: string, opts: { queue?: string; queueName?: string; module?: string[] }) => {
      let args: unknown;
      try {
        args = JSON.parse(rawArgs);
      } catch {
        throw new CliError('args must be a JSON array, e.g. \'[1, "x"]\'');
      }
      if (!Array.isArray(args)) throw new CliError('args must be a JSON array, e.g. \'[1, "x"]\'');
      if (opts.module) {
        await loadModules(opts.module);
        if (!registry.has(name)) {
          const defined = registry.names();
          throw new CliError(
            `command "${name}" is not defined by ${opts.module.join(', ')} (${defined.length > 0 ? `they define: ${defined.join(', ')}` : 'they define no commands'}); nothing was enqueued`,
          );
        }
      }
      const { id, data } = encodeMessage(name, args);
      const messageId = await withQueue(queueUrlOf(opts.queue), opts.queueName, (queue) => queue.write(data));
      print(`enqueued ${name} job ${id} (message ${messageId})`);
    });

  program
    .command('status')
    .description('show ready, leased, delayed and failed counts')
    .addOption(queueOption())
    .addOption(queueNameOption())
    .option('--json', 'print JSON')
    .action(async (opts: { queue?: string; queueName?: string; json?: boolean }) => {
      const url = queueUrlOf(opts.queue);
      const stats = await withQueue(url, opts.queueName, (queue) => queue.stats());
      const name = opts.queueName ?? 'default';
      if (opts.json) print(JSON.stringify({ queue: redactUrl(url), name, ...stats }));
      else
        print(`${redactUrl(url)} (queue ${name})\n  ready   ${stats.ready}\n  leased  ${stats.leased}\n  delayed ${stats.delayed}\n  failed  ${stats.failed}`);
    });

  program
    .command('dashboard')
    .description('serve the dashboard (queues, consumers, failed jobs) and print its URL with its token')
    .addOption(queueOption())
    .option('-Q, --queues <names>', 'queues on that server to show (default: default)', (value: string) =>
      value.split(',').map((name) => queueName('-Q')(name.trim())),
    )
    .option('--port <port>', 'port to listen on (0: any free port)', argParser(FLAGS.dashboardPort), FLAGS.dashboardPort.default)
    .option('--host <host>', 'address to listen on; other than loopback only with --allow-remote', '127.0.0.1')
    .option('--allow-remote', 'allow a --host other than loopback (prints a warning)')
    .action(async (opts: { queue?: string; queues?: string[]; port: number; host: string; allowRemote?: boolean }) => {
      const flags = { url: queueUrlOf(opts.queue), queues: opts.queues, port: opts.port, host: opts.host, allowRemote: opts.allowRemote === true };
      try {
        process.exitCode = await runDashboard(flags, print, (line) => process.stderr.write(`${line}\n`));
      } catch (error) {
        throw new CliError(`cannot start the dashboard: ${error instanceof Error ? error.message : String(error)}`);
      }
    });

  program
    .command('schedule')
    .description('list periodic commands and their next run times')
    .argument('[modules...]', 'command modules to import (default: autodiscover)')
    .option('-c, --count <n>', 'run times to show per command', argParser(FLAGS.count), FLAGS.count.default)
    .action(async (modules: string[], opts: { count: number }) => {
      await loadModules(modules);
      const periodic = registry.periodic();
      if (periodic.length === 0) return print('no periodic commands registered');
      for (const command of periodic) {
        const schedule = command.schedule!;
        const times: string[] = [];
        let at = new Date();
        for (let i = 0; i < opts.count; i++) {
          at = schedule.next(at);
          times.push(at.toISOString());
        }
        print(`${command.name}  ${schedule.source}${schedule.tz ? ` (${schedule.tz})` : ''}\n  next: ${times.join(', ')}`);
      }
    });

  program
    .command('failed')
    .description('list failed messages with their errors')
    .addOption(queueOption())
    .addOption(queueNameOption())
    .option('--limit <n>', 'how many', argParser(FLAGS.limit), FLAGS.limit.default)
    .option('--json', 'print JSON lines')
    .option('--stack', 'print whole stacks, not just the first line')
    .action(async (opts: { queue?: string; queueName?: string; limit: number; json?: boolean; stack?: boolean }) => {
      const failed = await withQueue(queueUrlOf(opts.queue), opts.queueName, (queue) => queue.failed(opts.limit));
      if (failed.length === 0 && !opts.json) return print('no failed messages');
      for (const f of failed) {
        if (opts.json) {
          print(JSON.stringify({ id: f.id, attempt: f.attempt, failedAt: f.failedAt.toISOString(), error: f.error, data: f.data }));
          continue;
        }
        const error = opts.stack ? f.error : f.error.split('\n')[0];
        print(`${f.id}  ${f.failedAt.toISOString()}  attempt ${f.attempt}  ${commandOf(f.data)}\n  ${error}`);
      }
    });

  program
    .command('retry')
    .description('re-queue failed jobs as a fresh first attempt (their retries start over)')
    .argument('[ids...]', 'failed message ids')
    .option('--all', 'retry every failed message')
    .addOption(queueOption())
    .addOption(queueNameOption())
    .action(async (ids: string[], opts: { queue?: string; queueName?: string; all?: boolean }) => {
      if (!opts.all && ids.length === 0) throw new CliError('give failed message ids, or --all');
      const n = await withQueue(queueUrlOf(opts.queue), opts.queueName, (queue) => retryFailed(queue, opts.all ? undefined : ids));
      print(`requeued ${n} message${n === 1 ? '' : 's'}`);
    });

  program
    .command('purge-failed')
    .description('delete failed messages')
    .addOption(queueOption())
    .addOption(queueNameOption())
    .action(async (opts: { queue?: string; queueName?: string }) => {
      const n = await withQueue(queueUrlOf(opts.queue), opts.queueName, (queue) => queue.purgeFailed());
      print(`deleted ${n} failed message${n === 1 ? '' : 's'}`);
    });

  program
    .command('flush')
    .description('delete every message of the queue (ready, leased and failed)')
    .addOption(queueOption())
    .addOption(queueNameOption())
    .action(async (opts: { queue?: string; queueName?: string }) => {
      await withQueue(queueUrlOf(opts.queue), opts.queueName, (queue) => queue.flush());
      print('queue flushed');
    });

  return program;
}

/** The command name in a message, for listings; never the arguments. */
function commandOf(data: string): string {
  const match = /"command":"((?:[^"\\]|\\.){1,200})"/.exec(data);
  return match ? (JSON.parse(`"${match[1]}"`) as string) : '(unreadable message)';
}

/**
 * A reader that went away (`taskmill failed | head`) is the end of the
 * output, not a crash: exit quietly as other Unix tools do.
 */
function endQuietlyOnEpipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    throw error;
  });
}

export async function main(argv: string[] = process.argv): Promise<void> {
  endQuietlyOnEpipe(process.stdout);
  endQuietlyOnEpipe(process.stderr);
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      // commander already printed its message (help, version, or a usage error) and knows its exit code.
      const exitCode = (error as { exitCode?: number }).exitCode;
      process.exitCode = typeof exitCode === 'number' ? (exitCode === 0 ? 0 : EXIT.startup) : EXIT.startup;
      return;
    }
    const message = error instanceof CliError || error instanceof TaskmillError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`taskmill: ${redactText(message)}\n`);
    process.exitCode = EXIT.startup;
  }
}

await main();
