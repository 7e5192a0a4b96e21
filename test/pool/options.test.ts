/**
 * The pool options' bad input, in process: a `pool` that is not one of the
 * three (createConsumer, queueCommand), and commands a thread or process
 * could not import — one defined in a test file's body, one defined outside
 * any module — refused at start with a ConfigError naming the command.
 * (Pools at work, in real consumers: test/reliability/pools.test.ts.)
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CommandRegistry, ConfigError, MemoryQueue, createConsumer, queueCommand, registry } from '../../src/index.js';
import { planPools } from '../../src/pool/pools.js';
import { poolRole } from '../../src/pool/role.js';

const silent = pino({ level: 'silent' });
const defined: string[] = [];
afterEach(() => {
  for (const name of defined.splice(0)) registry.unregister(name);
  poolRole.child = false;
});

describe('pool options', () => {
  it('createConsumer and queueCommand refuse a pool that is not inline, threads or processes, naming the value', () => {
    expect(() => createConsumer({ queue: new MemoryQueue(), logger: silent, pool: 'fibers' as never })).toThrow(
      new ConfigError('createConsumer: invalid pool "fibers": must be one of inline, threads, processes'),
    );
    expect(() => queueCommand({ name: 'bad-pool', pool: 'thread' as never }, () => 1)).toThrow(
      new ConfigError('queueCommand: invalid pool "thread": must be one of inline, threads, processes'),
    );
  });

  it('a command defined in a test file cannot move to a thread: start() fails naming it', async () => {
    const cmd = queueCommand({ name: 'in-test-body', pool: 'threads' }, () => 1);
    defined.push(cmd.commandName);
    const consumer = createConsumer({ queue: new MemoryQueue(), logger: silent, periodic: false });
    await expect(consumer.start()).rejects.toThrow(
      /^createConsumer: command "in-test-body" runs in pool 'threads', so a worker thread must import the module that defines it, but it is defined in a test file \(test\/pool\/options\.test\.ts\)/,
    );
    // done says the same: a start that failed is not a consumer left hanging.
    await expect(consumer.done).rejects.toThrow(/defined in a test file/);
  });

  it('a command defined outside any module (a REPL): a ConfigError naming it; inline commands need no module', () => {
    const commands = new CommandRegistry();
    commands.register({ name: 'from-repl', fn: () => 1, options: { name: 'from-repl' }, schedule: null, module: undefined, moduleFile: undefined });
    expect(planPools(commands, 'inline', undefined).size).toBe(0);
    expect(() => planPools(commands, 'processes', undefined)).toThrow(
      /^createConsumer: command "from-repl" runs in pool 'processes', so a child process must import the module that defines it, but it was defined outside any module/,
    );
    // Given the modules (the CLI), they are what children import, whatever the stack said.
    expect(planPools(commands, 'threads', ['/app/commands.js'])).toEqual(new Map([['threads', { modules: ['/app/commands.js'], commands: ['from-repl'] }]]));
  });

  it("given modules (the CLI's), children import those that define pooled commands — all of them when one is defined elsewhere", () => {
    const commands = new CommandRegistry();
    const command = (name: string, moduleFile: string | undefined, pool?: 'inline' | 'threads') =>
      commands.register({ name, fn: () => 1, options: { name, ...(pool ? { pool } : {}) }, schedule: null, module: moduleFile, moduleFile });
    command('a', '/app/a.js');
    command('b', '/app/b.js', 'inline');
    expect(planPools(commands, 'threads', ['/app/a.js', '/app/b.js'])).toEqual(new Map([['threads', { modules: ['/app/a.js'], commands: ['a'] }]]));
    command('c', '/app/lib/helper.js');
    expect(planPools(commands, 'threads', ['/app/a.js', '/app/b.js']).get('threads')!.modules).toEqual(['/app/a.js', '/app/b.js']);
  });

  it('the module read off the stack is the defining file (ESM under vitest)', () => {
    const cmd = queueCommand({ name: 'where-defined', pool: 'threads' }, () => 1);
    defined.push(cmd.commandName);
    expect(registry.get('where-defined')!.moduleFile).toBe(new URL(import.meta.url).pathname);
  });

  it('createConsumer refuses to start inside a pool child (a command module that also starts a consumer)', () => {
    poolRole.child = true;
    expect(() => createConsumer({ queue: new MemoryQueue(), logger: silent })).toThrow(/called in a pool thread or process/);
  });
});
