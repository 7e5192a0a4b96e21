/**
 * A Redis Cluster of a test's own: three masters and three replicas, six
 * private redis-server processes on free loopback ports (never the shared
 * server), joined with `redis-cli --cluster create`. A short
 * cluster-node-timeout makes a replica take over within a few seconds of its
 * master's death, so a failover test stays short. Every process is killed
 * when the test process exits, even after a failed test.
 */
import { spawn, spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { RedisServer, hasRedisServer } from './redis-server.js';

const CLI = process.env.TASKMILL_TEST_REDIS_CLI ?? 'redis-cli';

/** Whether a cluster can be made here (redis-server and redis-cli); under CI their absence is a failure, not a skip. */
export const hasRedisCluster: boolean = (() => {
  if (!hasRedisServer) return false;
  if (spawnSync(CLI, ['--version'], { encoding: 'utf8' }).status === 0) return true;
  const message = `${CLI} is not installed (set TASKMILL_TEST_REDIS_CLI to its path)`;
  if (process.env.CI) throw new Error(`${message} — under CI a missing tool is a failure, not a skip`);
  console.warn(`\n!!! SKIPPING Redis Cluster tests: ${message}. !!!\n`);
  return false;
})();

/** How long a master may be unreachable before its replica is elected (cluster-node-timeout). */
export const NODE_TIMEOUT_MS = 2000;

function run(binary: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${binary} ${args.join(' ')} exited with ${code}: ${out.trim()}`));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One raw command on one node; null when the node does not answer. */
async function ask(port: number, ...command: string[]): Promise<string | null> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return String(await client.call(command[0]!, ...command.slice(1)));
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}

export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  /** Starts six nodes, creates the cluster (3 masters, 1 replica each) and waits until every node reports cluster_state:ok. */
  static async start(): Promise<RedisCluster> {
    const args = ['--cluster-enabled', 'yes', '--cluster-node-timeout', String(NODE_TIMEOUT_MS), '--cluster-config-file', 'nodes.conf'];
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < 6; i++) nodes.push(await RedisServer.start({ args }));
      const cluster = new RedisCluster(nodes);
      const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
      await run(CLI, ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'], 60_000);
      await cluster.waitHealthy();
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((node) => node.dispose()));
      throw error;
    }
  }

  /** redis://127.0.0.1:p1,127.0.0.1:p2,…/?cluster=true — every node as a seed. */
  get url(): string {
    return `redis://${this.nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}/?cluster=true`;
  }

  /**
   * Resolves once every running node reports cluster_state:ok and every running replica has
   * synced with its master (a replica that never synced does not take over: its data is too old).
   */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.nodes.filter((node) => node.running);
      const infos = await Promise.all(running.map((node) => ask(node.port, 'CLUSTER', 'INFO')));
      const replication = await Promise.all(running.map((node) => ask(node.port, 'INFO', 'replication')));
      const synced = replication.every((info) => info !== null && (info.includes('role:master') || info.includes('master_link_status:up')));
      if (synced && infos.every((info) => info?.includes('cluster_state:ok'))) return;
      if (Date.now() > deadline) throw new Error(`Redis Cluster not healthy after ${timeoutMs} ms: ${infos.map((i) => i?.split('\r\n')[0]).join(', ')}`);
      await sleep(100);
    }
  }

  /** The node that is master of `key`'s slot now (asked of a running node). */
  async masterOf(key: string): Promise<RedisServer> {
    for (const node of this.nodes.filter((n) => n.running)) {
      const slot = await ask(node.port, 'CLUSTER', 'KEYSLOT', key);
      if (slot === null) continue;
      const port = await this.#masterPortOfSlot(node.port, Number(slot));
      const master = this.nodes.find((n) => n.port === port);
      if (master) return master;
    }
    throw new Error(`no running node knows the master of "${key}"`);
  }

  async #masterPortOfSlot(askPort: number, slot: number): Promise<number | undefined> {
    const client = new Redis({ host: '127.0.0.1', port: askPort, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    try {
      await client.connect();
      const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]]][];
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      return range?.[2][1];
    } finally {
      client.disconnect();
    }
  }

  /** Whether `node` is a master now (by its own INFO replication). */
  async isMaster(node: RedisServer): Promise<boolean> {
    return (await ask(node.port, 'INFO', 'replication'))?.includes('role:master') ?? false;
  }

  /** Kills every node and removes their directories. */
  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.dispose()));
  }
}
