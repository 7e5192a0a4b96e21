/**
 * The run-command actor runs a whole share: each job settled with the queue
 * adapter as it goes (through its settler, no event to the worker), one
 * SHARE_DONE at the end, or a COMMAND_FAILED carrying the unstarted rest.
 * Hosted by the machine-test harness, whose parent records what it sends back.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback } from 'xstate';
import pino from 'pino';
import { createRunCommand } from '../../src/actors/run-command.js';
import type { JobSettler } from '../../src/actors/settlements.js';
import { encodeMessage } from '../../src/codec/message.js';
import { CommandRegistry } from '../../src/producer/registry.js';
import type { RegisteredCommand } from '../../src/producer/commands.js';
import type { JobResult, LeasedMessage } from '../../src/machines/protocol.js';
import { createHarness } from '../machines/helpers.js';

type Settled = { how: 'ack'; id: string; status: string | undefined } | { how: 'fail'; id: string; error: string } | { how: 'deferred'; id: string };

function recordingSettler() {
  const settled: Settled[] = [];
  const released: string[][] = [];
  const statusOf = (result: JobResult | undefined) => (result ? (JSON.parse(result.record) as { status: string }).status : undefined);
  const settler: JobSettler = {
    ack: (message, result) => void settled.push({ how: 'ack', id: message.id, status: statusOf(result) }),
    fail: (message, error) => void settled.push({ how: 'fail', id: message.id, error }),
    deferred: (message) => void settled.push({ how: 'deferred', id: message.id }),
    release: (messages) => void released.push(messages.map((m) => m.id)),
  };
  return { settler, settled, released };
}

function command(name: string, fn: (...args: unknown[]) => unknown, options: Partial<RegisteredCommand['options']> = {}): RegisteredCommand {
  return { name, fn, options: { name, ...options }, schedule: null, module: 'test' };
}

let seq = 0;
function message(name: string, args: unknown[], options: { expiresAt?: number } = {}): LeasedMessage {
  return { id: `m${++seq}`, data: encodeMessage(name, args, options).data, attempt: 1, delivery: 1 };
}

/** `worker`: the runner is started as a worker starts it (naming the worker), next to a recording reader. */
function startRunner(commands: RegisteredCommand[], { worker = false } = {}) {
  const registry = new CommandRegistry();
  for (const c of commands) registry.register(c);
  const { settler, settled, released } = recordingSettler();
  const logic = createRunCommand({ commands: registry, logger: pino({ level: 'silent' }), settlements: settler });
  const stub = fromCallback(() => {});
  const workerRef = worker ? createActor(stub).start() : undefined;
  const h = createHarness({ logic, id: 'runner', input: { workerId: 'worker-1', worker: workerRef }, withReaderStub: worker });
  const back = () => h.parentReceived.filter((e) => e.type === 'SHARE_DONE' || e.type === 'COMMAND_FAILED');
  return { h, settled, released, back, workerRef };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('run-command: a share', () => {
  it('runs every message in turn, acks each through the settler as it ends, reports SHARE_DONE once', async () => {
    const ran: unknown[] = [];
    const { h, settled, back } = startRunner([command('note', (n) => void ran.push(n)), command('later', async (n) => void ran.push(n))]);
    const share = [message('note', [1]), message('later', [2]), message('note', [3])];
    h.sut.send({ type: 'JOB', message: share[0], more: share.slice(1) });
    await flush();
    expect(ran).toEqual([1, 2, 3]);
    expect(settled).toEqual(share.map((m) => ({ how: 'ack', id: m.id, status: 'completed' })));
    expect(back()).toEqual([{ type: 'SHARE_DONE', finished: 3 }]);
    // the runner sends nothing to the queue actor itself: its settler is the adapter's
    expect(h.queue.received).toEqual([]);
    h.stop();
  });

  it('a message that cannot run is failed, an expired one acked as expired, and the share goes on', async () => {
    const ran: unknown[] = [];
    const { h, settled, back } = startRunner([command('note', (n) => void ran.push(n))]);
    const bad: LeasedMessage = { id: 'bad', data: 'not json', attempt: 1, delivery: 1 };
    const expired = message('note', [0], { expiresAt: Date.now() - 1_000 });
    const ok = message('note', [1]);
    h.sut.send({ type: 'JOB', message: bad, more: [expired, ok] });
    await flush();
    expect(ran).toEqual([1]);
    expect(settled.map((s) => [s.how, s.id, s.how === 'ack' ? s.status : undefined])).toEqual([
      ['fail', 'bad', undefined],
      ['ack', expired.id, 'expired'],
      ['ack', ok.id, 'completed'],
    ]);
    expect(back()).toEqual([{ type: 'SHARE_DONE', finished: 3 }]);
    h.stop();
  });

  it('RELEASE_UNSTARTED gives the unstarted rest back at once; the running job finishes and the share ends with it', async () => {
    let finish!: () => void;
    const ran: unknown[] = [];
    const { h, settled, released, back } = startRunner([
      command('slow', (n) => {
        ran.push(n);
        return new Promise<void>((resolve) => (finish = resolve));
      }),
    ]);
    const share = [message('slow', [1]), message('slow', [2]), message('slow', [3])];
    h.sut.send({ type: 'JOB', message: share[0], more: share.slice(1) });
    h.sut.send({ type: 'RELEASE_UNSTARTED' });
    expect(released).toEqual([[share[1]!.id, share[2]!.id]]);
    expect(back()).toEqual([]);
    finish();
    await flush();
    expect(ran).toEqual([1]);
    expect(settled).toEqual([{ how: 'ack', id: share[0]!.id, status: 'completed' }]);
    expect(back()).toEqual([{ type: 'SHARE_DONE', finished: 1 }]);
    h.stop();
  });

  it('a CANCEL of the running job and of a queued one: the first is aborted, the other never runs, both acked as cancelled', async () => {
    const ran: unknown[] = [];
    let signal: AbortSignal | undefined;
    const { h, settled, back } = startRunner([
      command('wait', function (this: { signal: AbortSignal }, n) {
        ran.push(n);
        signal = this.signal;
        return new Promise(() => {});
      }),
      command('note', (n) => void ran.push(n)),
    ]);
    const first = message('wait', [1]);
    const second = message('note', [2]);
    const third = message('note', [3]);
    const jobIdOf = (m: LeasedMessage) => (JSON.parse(m.data) as { id: string }).id;
    h.sut.send({ type: 'JOB', message: first, more: [second, third] });
    // the queued one first in the list or last: either way it is known before the running one's end starts it
    h.sut.send({
      type: 'CANCEL',
      cancels: [
        { id: first.id, jobId: jobIdOf(first) },
        { id: second.id, jobId: jobIdOf(second) },
      ],
    });
    await flush();
    expect(signal?.aborted).toBe(true);
    expect(ran).toEqual([1, 3]);
    expect(settled).toEqual([
      { how: 'ack', id: first.id, status: 'cancelled' },
      { how: 'ack', id: second.id, status: 'cancelled' },
      { how: 'ack', id: third.id, status: 'completed' },
    ]);
    expect(back()).toEqual([{ type: 'SHARE_DONE', finished: 3 }]);
    h.stop();
  });

  it('a failure mid-share is reported to the worker with the failed message and the unstarted rest; nothing more runs', async () => {
    const ran: unknown[] = [];
    const { h, settled, released, back } = startRunner([
      command('note', (n) => void ran.push(n)),
      command('boom', () => {
        throw new Error('boom');
      }),
    ]);
    const share = [message('note', [1]), message('boom', []), message('note', [3])];
    h.sut.send({ type: 'JOB', message: share[0], more: share.slice(1) });
    await flush();
    expect(ran).toEqual([1]);
    expect(settled).toEqual([{ how: 'ack', id: share[0]!.id, status: 'completed' }]);
    expect(released).toEqual([]);
    const [failed] = back();
    expect(back()).toHaveLength(1);
    expect(failed).toMatchObject({ type: 'COMMAND_FAILED', command: 'boom', message: share[1], unstarted: [share[2]], retry: undefined });
    h.stop();
  });

  it('a cancel that arrives after its job ended changes nothing; the next share runs as usual', async () => {
    const ran: unknown[] = [];
    const { h, back } = startRunner([command('note', (n) => void ran.push(n))]);
    const a = message('note', [1]);
    h.sut.send({ type: 'JOB', message: a });
    await flush();
    // a cancel that arrives after its job ended is ignored
    h.sut.send({ type: 'CANCEL', cancels: [{ id: a.id, jobId: 'gone' }] });
    const b = message('note', [2]);
    h.sut.send({ type: 'JOB', message: b });
    await flush();
    expect(ran).toEqual([1, 2]);
    expect(back()).toEqual([
      { type: 'SHARE_DONE', finished: 1 },
      { type: 'SHARE_DONE', finished: 1 },
    ]);
    h.stop();
  });
});

describe('run-command: the next share from the reader (RUNNER_READY)', () => {
  const asked = (h: ReturnType<typeof startRunner>['h']) => h.readerReceived.filter((e) => e.type === 'RUNNER_READY');

  it("at the end of a share it asks the reader in its worker's name, runs the JOB it is answered with, and only NO_JOB ends the busy spell", async () => {
    const ran: unknown[] = [];
    const { h, back, workerRef } = startRunner([command('note', (n) => void ran.push(n))], { worker: true });
    const first = [message('note', [1]), message('note', [2])];
    h.sut.send({ type: 'JOB', message: first[0], more: first.slice(1) });
    await flush();
    expect(asked(h)).toEqual([{ type: 'RUNNER_READY', worker: workerRef, runner: h.sut }]);
    expect(back()).toEqual([]); // the worker hears nothing while the backlog lasts
    h.sut.send({ type: 'JOB', message: message('note', [3]) }); // the reader's answer
    await flush();
    expect(ran).toEqual([1, 2, 3]);
    expect(asked(h)).toHaveLength(2);
    h.sut.send({ type: 'NO_JOB' });
    // one SHARE_DONE for the whole spell, counting every job settled in it
    expect(back()).toEqual([{ type: 'SHARE_DONE', finished: 3 }]);
    h.sut.send({ type: 'NO_JOB' }); // a second answer to one ask is ignored
    expect(back()).toHaveLength(1);
    h.stop();
  });

  it('a drain or retirement while it waits: it withdraws the ask; a JOB that crossed it is released whole, unstarted', async () => {
    const ran: unknown[] = [];
    const { h, back, released } = startRunner([command('note', (n) => void ran.push(n))], { worker: true });
    h.sut.send({ type: 'JOB', message: message('note', [1]) });
    await flush();
    h.sut.send({ type: 'RELEASE_UNSTARTED' });
    expect(h.readerReceived.filter((e) => e.type === 'RUNNER_WITHDRAW')).toEqual([{ type: 'RUNNER_WITHDRAW', runner: h.sut }]);
    const crossed = [message('note', [2]), message('note', [3])];
    h.sut.send({ type: 'JOB', message: crossed[0], more: crossed.slice(1) });
    await flush();
    expect(ran).toEqual([1]);
    expect(released).toEqual([crossed.map((m) => m.id)]);
    expect(back()).toEqual([{ type: 'SHARE_DONE', finished: 1 }]);
    h.stop();
  });

  it('after a drain or retirement the end of the share goes to the worker: no more asks', async () => {
    let finish!: () => void;
    const { h, back } = startRunner([command('slow', () => new Promise<void>((resolve) => (finish = resolve)))], { worker: true });
    h.sut.send({ type: 'JOB', message: message('slow', []), more: [message('slow', [])] });
    await flush();
    h.sut.send({ type: 'RELEASE_UNSTARTED' }); // while the first runs: the second goes back
    expect(h.readerReceived).toEqual([]);
    finish();
    await flush();
    expect(asked(h)).toEqual([]);
    expect(back()).toEqual([{ type: 'SHARE_DONE', finished: 1 }]);
    h.stop();
  });

  it('once its worker is gone (a worker that broke leaves its runner running) it finishes its share and asks for no more', async () => {
    const ran: unknown[] = [];
    const { h, back, workerRef } = startRunner([command('note', (n) => void ran.push(n))], { worker: true });
    workerRef!.stop();
    h.sut.send({ type: 'JOB', message: message('note', [1]), more: [message('note', [2])] });
    await flush();
    expect(ran).toEqual([1, 2]);
    expect(asked(h)).toEqual([]);
    expect(back()).toEqual([{ type: 'SHARE_DONE', finished: 2 }]);
    h.stop();
  });

  it('stopped while it waits for an answer, it withdraws the ask so that no share is handed to it', async () => {
    const { h } = startRunner([command('note', () => {})], { worker: true });
    h.sut.send({ type: 'JOB', message: message('note', []) });
    await flush();
    expect(asked(h)).toHaveLength(1);
    h.sut.send({ type: 'xstate.stop' }); // the runner alone (as a failing worker stops it), the reader still running
    expect(h.readerReceived.filter((e) => e.type === 'RUNNER_WITHDRAW')).toEqual([{ type: 'RUNNER_WITHDRAW', runner: h.sut }]);
    h.stop();
  });
});
