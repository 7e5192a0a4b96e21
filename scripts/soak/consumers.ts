/**
 * The soak's `taskmill consume` children (the real CLI through tsx). The pool
 * keeps its size: a consumer the soak kills or stops is replaced at once, and
 * one that exits on its own (which it never should) is counted and replaced.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { spawnCli, type Spawned } from '../../test/helpers/processes.js';

export const COMMANDS_MODULE = path.join(path.dirname(new URL(import.meta.url).pathname), 'commands.ts');

interface Member {
  spawned: Spawned;
  startedAt: number;
  /** What the soak did to it, if anything. */
  signalled: 'SIGKILL' | 'SIGTERM' | null;
}

export interface ConsumerPoolOptions {
  url: string;
  dir: string;
  recordFile: string;
  size: number;
  leaseSeconds: number;
  threads: number;
  note: (line: string) => void;
}

/** Every consumer still running when the soak exits (a thrown error included) is killed with it. */
const everyMember = new Set<Member>();
process.once('exit', () => {
  for (const member of everyMember)
    if (member.spawned.child.exitCode === null && member.spawned.child.signalCode === null) member.spawned.child.kill('SIGKILL');
});

export class ConsumerPool {
  readonly #options: ConsumerPoolOptions;
  readonly #members = new Set<Member>();
  readonly #all: Member[] = [];
  #stopping = false;
  /** Pids the soak SIGKILLed: a job they ran may run again (at least once). */
  readonly killedPids = new Set<number>();
  kills = 0;
  terms = 0;
  /** Exits nobody asked for: pid, exit code or signal, last stderr. */
  readonly unexpectedExits: string[] = [];
  /**
   * Consumers that died of a SIGTERM that came while Node was still loading the
   * CLI and the command modules (before `taskmill consume` installs its signal
   * handlers): the default action, like any process, not a failed drain.
   */
  stoppedWhileStarting = 0;
  /** Consumers stopped with SIGTERM that did not exit 0 (other than the above). */
  readonly badStops: string[] = [];

  constructor(options: ConsumerPoolOptions) {
    this.#options = options;
    mkdirSync(path.join(options.dir, 'consumers'), { recursive: true });
  }

  start(): void {
    for (let i = 0; i < this.#options.size; i++) this.#spawn();
  }

  get pids(): number[] {
    return [...this.#members].map((m) => m.spawned.child.pid!);
  }

  #spawn(): Member {
    const { url, dir, recordFile, leaseSeconds, threads } = this.#options;
    const log = path.join(dir, 'consumers', `${this.#all.length + 1}.log`);
    // -v 0: warnings and errors only (outages are warnings), so the logs stay small over a long soak.
    const args = [
      'consume',
      '-q',
      url,
      '-t',
      String(threads),
      '-n',
      '--lease',
      String(leaseSeconds),
      '-d',
      '0.02',
      '-m',
      '0.5',
      '-g',
      '10',
      '-v',
      '0',
      '-l',
      log,
      COMMANDS_MODULE,
    ];
    const spawned = spawnCli(args, { env: { SOAK_RECORD_FILE: recordFile } });
    const member: Member = { spawned, startedAt: Date.now(), signalled: null };
    this.#members.add(member);
    this.#all.push(member);
    everyMember.add(member);
    void spawned.exited.then((code) => {
      this.#members.delete(member);
      everyMember.delete(member);
      const pid = spawned.child.pid;
      if (member.signalled === 'SIGTERM' && code === 'SIGTERM') this.stoppedWhileStarting++;
      else if (member.signalled === 'SIGTERM' && code !== 0) this.badStops.push(`pid ${pid} exited ${code} after SIGTERM: ${tail(spawned.stderr())}`);
      if (member.signalled === null) {
        this.unexpectedExits.push(`pid ${pid} exited ${code} (log ${log}): ${tail(spawned.stderr())}`);
        this.#options.note(`consumer ${pid} exited ${code} on its own`);
        if (!this.#stopping) this.#spawn();
      }
    });
    return member;
  }

  /** A random unsignalled consumer; `settled`: prefer one running for 10 s (past its startup). */
  #pick(random: () => number, settled = false): Member | null {
    const members = [...this.#members].filter((m) => m.signalled === null);
    const older = members.filter((m) => Date.now() - m.startedAt > 10_000);
    const from = settled && older.length > 0 ? older : members;
    const choice = from[Math.floor(random() * from.length)];
    return choice ?? null;
  }

  /** kill -9 one consumer and start another; returns a description. */
  kill9(random: () => number): string {
    const victim = this.#pick(random);
    if (!victim) return 'kill -9: no consumer to kill';
    victim.signalled = 'SIGKILL';
    victim.spawned.child.kill('SIGKILL');
    this.killedPids.add(victim.spawned.child.pid!);
    this.kills++;
    const next = this.#spawn();
    return `kill -9 consumer ${victim.spawned.child.pid} → started ${next.spawned.child.pid}`;
  }

  /** SIGTERM one consumer (it drains) and start another at once. */
  terminate(random: () => number): string {
    const victim = this.#pick(random, true);
    if (!victim) return 'SIGTERM: no consumer to stop';
    victim.signalled = 'SIGTERM';
    victim.spawned.child.kill('SIGTERM');
    this.terms++;
    // A drain that hangs (grace is 10 s) is reported as a bad stop and ended.
    const timer = setTimeout(() => {
      if (victim.spawned.child.exitCode === null && victim.spawned.child.signalCode === null) {
        this.badStops.push(`pid ${victim.spawned.child.pid} still running 30 s after SIGTERM; killed`);
        victim.spawned.child.kill('SIGKILL');
      }
    }, 30_000);
    void victim.spawned.exited.then(() => clearTimeout(timer));
    const next = this.#spawn();
    return `SIGTERM consumer ${victim.spawned.child.pid} → started ${next.spawned.child.pid}`;
  }

  /** SIGTERM every consumer and wait for all (SIGKILL after `withinMs`). */
  async stopAll(withinMs = 30_000): Promise<void> {
    this.#stopping = true;
    const running = this.#all.filter((m) => m.spawned.child.exitCode === null && m.spawned.child.signalCode === null);
    for (const member of running) {
      if (member.signalled === null) member.signalled = 'SIGTERM';
      member.spawned.child.kill('SIGTERM');
    }
    const timer = setTimeout(() => {
      for (const member of running) member.spawned.child.kill('SIGKILL');
    }, withinMs);
    await Promise.all(this.#all.map((m) => m.spawned.exited));
    clearTimeout(timer);
  }
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ').slice(0, 500);
}
