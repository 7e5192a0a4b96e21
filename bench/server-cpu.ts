/**
 * CPU time on this machine: the whole machine's busy ticks, and a Redis or
 * PostgreSQL server's own CPU (the scale-out workload and
 * bench/postgres-claim-cost.ts say what the server spent per job with it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Backend } from './systems/types.js';

/** /proc reports CPU time in USER_HZ ticks: 100 per second on every Linux ABI. */
const TICKS_PER_SECOND = 100;

/** Busy and total CPU ticks of the whole machine (/proc/stat), or null where there is none. */
export function machineTicks(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  } catch {
    return null;
  }
}

/** ppid and user + system ticks of a process, from /proc/<pid>/stat (its name may hold spaces and parentheses). */
function processTicks(pid: number): { ppid: number; ticks: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null; // gone, or not Linux
  }
}

/** CPU ms used so far, per server process (one entry for Redis). */
export type ServerSample = Map<number, number>;

export interface ServerCpu {
  /** The server's CPU time so far; null when it cannot be read. */
  sample(): Promise<ServerSample | null>;
  close(): Promise<void>;
}

/**
 * CPU ms the server used between two samples, process by process: a backend
 * that exits between them (another client of a shared server disconnecting)
 * must not subtract its whole life from the sum. One that started between
 * them counts from zero; one that exited takes its last share with it.
 */
export function serverMsBetween(before: ServerSample, after: ServerSample): number {
  let ms = 0;
  for (const [pid, used] of after) {
    const earlier = before.get(pid);
    ms += earlier !== undefined && used >= earlier ? used - earlier : used;
  }
  return ms;
}

/**
 * The CPU the server at the bench's URL has used. Redis says so itself
 * (INFO cpu). PostgreSQL runs a process per connection: the postmaster
 * (the parent of our own backend) and its children are summed from /proc,
 * so it is known only for a server on this machine. Either way it is the
 * whole server's: on a shared server, other clients' work counts too.
 */
export async function serverCpu(backend: Backend, urls: { redisUrl: string; postgresUrl: string }): Promise<ServerCpu> {
  if (backend === 'redis') {
    const redis = new Redis(urls.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    await redis.connect();
    return {
      async sample() {
        const info = await redis.info('cpu');
        const seconds = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
        const ms = (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000;
        return Number.isFinite(ms) ? new Map([[0, ms]]) : null;
      },
      close: async () => void redis.disconnect(),
    };
  }
  if (backend === 'postgres') {
    const client = new pg.Client({ connectionString: urls.postgresUrl });
    client.on('error', () => {});
    await client.connect();
    const ownPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const postmaster = processTicks(ownPid)?.ppid ?? null;
    return {
      async sample() {
        if (postmaster === null) return null;
        const used: ServerSample = new Map();
        for (const entry of readdirSync('/proc')) {
          if (!/^\d+$/.test(entry)) continue;
          const pid = Number(entry);
          const p = processTicks(pid);
          if (p && (pid === postmaster || p.ppid === postmaster)) used.set(pid, (p.ticks / TICKS_PER_SECOND) * 1000);
        }
        return used;
      },
      close: () => client.end(),
    };
  }
  return { sample: async () => null, close: async () => {} };
}
