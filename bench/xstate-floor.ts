/**
 * The floor under taskmill's per-job cost: what xstate v5 itself charges for
 * the three machine events every job takes (JOB to a worker, the runner's
 * COMMAND_DONE back to it, the worker's WORKER_READY to the reader), with no
 * queue, no decode and no command. A reader machine and N worker machines
 * shaped like taskmill's (idle ⇄ busy, assign on each step, sendTo through
 * the system) pass N × jobs/N tokens around; the figure is CPU µs per job.
 * It explains why the memory backend cannot reach 100,000 jobs/s while each
 * job is three machine events (see bench/RESULTS.md, "Profile findings").
 *
 * `--batch K` hands each worker K jobs per JOB event and lets it report them
 * in one DONE: what the same three events cost per job once a job is no
 * longer an event of its own.
 *
 *   npx tsx bench/xstate-floor.ts [--jobs 200000] [--workers 10] [--batch 1]
 */
import { parseArgs } from 'node:util';
import { assign, createActor, enqueueActions, sendTo, setup, type AnyActorRef } from 'xstate';

const { values } = parseArgs({
  options: { jobs: { type: 'string', default: '200000' }, workers: { type: 'string', default: '10' }, batch: { type: 'string', default: '1' } },
});
const jobs = Number(values.jobs);
const workers = Number(values.workers);
const batch = Number(values.batch);

const worker = setup({
  types: { context: {} as { job: number | null; finished: number }, events: {} as { type: 'JOB'; n: number } | { type: 'DONE' } },
  actions: {
    ready: sendTo(
      ({ system }) => system.get('reader'),
      ({ self, context }) => ({ type: 'READY' as const, worker: self, done: context.finished > 0 }),
    ),
    take: assign({ job: ({ event }) => (event as { n: number }).n }),
    // The runner's COMMAND_DONE, delivered as taskmill's runner delivers it: an event to the worker.
    run: ({ self }) => queueMicrotask(() => self.send({ type: 'DONE' })),
    finish: assign({ job: null, finished: ({ context }) => context.finished + 1 }),
  },
}).createMachine({
  context: { job: null, finished: 0 },
  initial: 'idle',
  states: {
    idle: { entry: 'ready', on: { JOB: { target: 'busy', actions: 'take' } } },
    busy: { entry: 'run', on: { DONE: { target: 'idle', actions: 'finish' } } },
  },
});

let resolveDone: () => void = () => {};
const reader = setup({
  types: { context: {} as { next: number; done: number; idle: AnyActorRef[] }, events: {} as { type: 'READY'; worker: AnyActorRef; done: boolean } },
  actions: {
    dispatch: enqueueActions(({ context, event, enqueue }) => {
      const done = context.done + (event.done ? batch : 0);
      if (done >= jobs) resolveDone();
      if (context.next < jobs) enqueue.sendTo(event.worker, { type: 'JOB', n: context.next });
      enqueue.assign({ done, next: context.next < jobs ? context.next + batch : context.next });
    }),
  },
}).createMachine({ context: { next: 0, done: 0, idle: [] }, on: { READY: { actions: 'dispatch' } } });

const parent = setup({ actors: { reader, worker } }).createMachine({
  entry: enqueueActions(({ enqueue }) => {
    enqueue.spawnChild('reader', { id: 'reader', systemId: 'reader' });
    for (let i = 0; i < workers; i++) enqueue.spawnChild('worker', { id: `worker-${i}` });
  }),
});

const finished = new Promise<void>((resolve) => (resolveDone = resolve));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const actor = createActor(parent).start();
await finished;
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
actor.stop();
const cpuUsPerJob = (cpu.user + cpu.system) / jobs;
console.log(
  `${jobs.toLocaleString('en')} jobs, ${workers} workers, ${batch} job(s) per event: ${(3 / batch).toFixed(2)} machine events per job (xstate ${(await import('xstate/package.json', { with: { type: 'json' } })).default.version}):`,
);
console.log(
  `  ${Math.round(jobs / (ms / 1000)).toLocaleString('en')} jobs/s, ${cpuUsPerJob.toFixed(1)} CPU µs per job (${((cpuUsPerJob * batch) / 3).toFixed(1)} µs per machine event)`,
);
console.log(`  ceiling at this cost: ${Math.round(1e6 / cpuUsPerJob).toLocaleString('en')} jobs/s on one core`);
