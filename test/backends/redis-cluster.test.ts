/**
 * RedisQueue and RedisBlockingQueue on a real Redis Cluster: three masters,
 * three replicas, private redis-server processes on loopback ports
 * (test/helpers/redis-cluster.ts). The whole BaseQueue contract suite runs
 * on it in both modes; then the slot guarantee is checked key by key, and
 * the URL forms and their errors. The failover is test/e2e/redis-cluster.test.ts.
 */
import { inspect } from 'node:util';
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createQueue } from '../../src/backends/index.js';
import { RedisBlockingQueue, RedisQueue, type RedisQueueOptions } from '../../src/backends/redis/queue.js';
import { ConfigError, QueueConnectionError } from '../../src/shared/errors.js';
import { runContractSuite } from '../../src/testing/index.js';
import { RedisCluster, hasRedisCluster } from '../helpers/redis-cluster.js';
import { uniqueName } from '../helpers/services.js';

const SECRET = 's3cr3t-Pa55word';
const PREFIX = uniqueName('tmcluster');

describe.skipIf(!hasRedisCluster)('Redis Cluster (3 masters, 3 replicas, private servers)', () => {
  let cluster: RedisCluster;
  const made: RedisQueue[] = [];

  function queue(options: RedisQueueOptions = {}, url = cluster.url): RedisQueue {
    const q = new RedisQueue(url, { prefix: PREFIX, name: uniqueName('q'), ...options });
    made.push(q);
    return q;
  }

  beforeAll(async () => {
    cluster = await RedisCluster.start();
  }, 90_000);

  afterEach(async () => {
    await Promise.all(made.splice(0).map((q) => q.close()));
  });

  afterAll(async () => {
    await cluster?.dispose();
  });

  runContractSuite('RedisQueue on a cluster', { create: (options) => new RedisQueue(cluster.url, options) });
  runContractSuite('RedisBlockingQueue on a cluster', { create: (options) => new RedisBlockingQueue(cluster.url, options) });

  describe('the slot guarantee', () => {
    it('every key a queue creates, in every feature, lives in the one slot of its hash tag', async () => {
      const q = queue({ leaseMs: 60_000 });
      // Every kind of key: messages, leases, failures, unique keys, delays, results, gates
      // (a rate log too), cancel marks, listeners, the events log, the consumer registry.
      await q.writeBatch(['a', 'b', 'c', 'd']);
      await q.writeUnique('slot', 'x', 60_000);
      await q.writeOnce('once', 'y', { keyTtlMs: 60_000 });
      await q.write('later', { runAt: Date.now() + 3_600_000, priority: 5 });
      const [m1, m2, m3] = await q.readBatch(3);
      await q.fail(m1!.id, 'boom');
      expect((await q.startGated(m2!.id, { rate: { key: 'r', limit: 10, perMs: 60_000 }, concurrency: { key: 'c', limit: 1 } })).decision).toBe('started');
      expect(await q.cancel(m3!.id, 'job-3')).toBe('signalled');
      await q.setResults([{ jobId: 'job-1', record: '{"ok":true}', ttlMs: 60_000 }]);
      await q.registerListener('listener-1');
      await q.publishEvents(['{"e":1}']);
      await q.heartbeat('consumer-1', '{}');

      const keys = await scanAll(`${PREFIX}:{${q.name}}*`);
      for (const role of ['ready', 'leases', 'failed', 'ukeys', 'delayed', 'results', 'holders', 'rate:r', 'cancels', 'listeners', 'events', 'consumers']) {
        expect(keys).toContain(`${PREFIX}:{${q.name}}:${role}`);
      }
      const slots = new Set(await Promise.all(keys.map((key) => clusterClient().cluster('KEYSLOT', key))));
      expect(slots.size).toBe(1);
      // Nothing of the queue anywhere else: no key of this prefix outside the tag.
      expect((await scanAll(`${PREFIX}:*`)).filter((key) => !key.startsWith(`${PREFIX}:{${q.name}}:`))).toEqual([]);
      await q.flush();
      expect(await scanAll(`${PREFIX}:{${q.name}}:r*`)).toEqual([]);
    });
  });

  describe('maxmemory-policy', () => {
    it('warns once on open when any master may evict keys, not only the one a command reached', async () => {
      const masters = await masterClients();
      const quiet: string[] = [];
      await queue({ onWarning: (m) => quiet.push(m) }).open();
      expect(quiet).toEqual([]);
      // The last master only: a check of one random node would miss it two times in three.
      const evicting = masters[masters.length - 1]!;
      await evicting.config('SET', 'maxmemory-policy', 'allkeys-lru');
      try {
        const warnings: string[] = [];
        const q = queue({ onWarning: (m) => warnings.push(m) });
        await q.open();
        await q.write('x');
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toContain('"allkeys-lru"');
      } finally {
        await evicting.config('SET', 'maxmemory-policy', 'noeviction');
      }
    });
  });

  describe('URLs and options', () => {
    it('takes the cluster from createQueue(url, { cluster: true }) with a single seed node', async () => {
      const seed = `redis://127.0.0.1:${cluster.nodes[0]!.port}/0`;
      const q = createQueue(seed, { name: uniqueName('q'), prefix: PREFIX, cluster: true }) as RedisQueue;
      made.push(q);
      expect(q.cluster).toBe(true);
      // Keys of many queues spread over every master: each must still work through one seed.
      for (let i = 0; i < 5; i++) {
        const other = queue({ cluster: true }, seed);
        await other.write(`m${i}`);
        expect((await other.read())?.data).toBe(`m${i}`);
      }
      expect(JSON.parse(JSON.stringify(q))).toMatchObject({ cluster: true });
    });

    it('a single-node client of a cluster is refused by the server (MOVED) for most queues, so cluster must be said', async () => {
      // Without ?cluster=true the seed is taken as a plain server: a queue whose slot is elsewhere fails loudly.
      const seed = `redis://127.0.0.1:${cluster.nodes[0]!.port}/0`;
      let refused = 0;
      // A third of the names hash to the seed's own slots; one refusal is enough.
      for (let i = 0; i < 30 && refused === 0; i++) {
        const q = queue({}, seed);
        expect(q.cluster).toBe(false);
        await q.write('x').catch((error: unknown) => {
          expect(error).toBeInstanceOf(QueueConnectionError);
          expect((error as Error).message).toContain('MOVED');
          refused++;
        });
      }
      expect(refused).toBeGreaterThan(0);
    });

    it.each([
      ['redis://127.0.0.1:7000,127.0.0.1:7001/0', 'add ?cluster=true'],
      ['redis://127.0.0.1:7000,127.0.0.1:7001/3?cluster=true', 'database 0 only'],
      ['redis://127.0.0.1:7000/0?cluster=yes', 'cluster must be true or false'],
      [`redis://:${SECRET}@127.0.0.1:7000,127.0.0.1:x/?cluster=true`, 'invalid host:port "127.0.0.1:x"'],
      [`redis://:${SECRET}@127.0.0.1:7000,:99999/?cluster=true`, 'invalid host:port'],
      ['redis://127.0.0.1:7000,/?cluster=true', 'invalid host:port ""'],
      [`redis://:${SECRET}@127.0.0.1:7000/?cluster=true&foo=1`, 'unsupported parameter'],
    ])('refuses %s with a ConfigError', (url, reason) => {
      let caught: unknown;
      try {
        new RedisQueue(url);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toContain(reason);
      expect((caught as Error).message).not.toContain(SECRET);
    });

    it('parses several nodes, IPv6 and default ports; the options override ?cluster=', () => {
      const q = new RedisQueue(`redis://u:${SECRET}@[::1]:7000,10.0.0.2,host-3:7002/?cluster=true&prefix=p`);
      expect(q.cluster).toBe(true);
      expect(q.prefix).toBe('p');
      expect(inspect(q)).toContain('redis://u:***@[::1]:7000,10.0.0.2,host-3:7002/?cluster=true');
      expect(new RedisQueue('redis://127.0.0.1:7000/?cluster=true', { cluster: false }).cluster).toBe(false);
      expect(() => new RedisQueue('redis://127.0.0.1:7000/', { cluster: 'yes' as unknown as boolean })).toThrow(ConfigError);
    });

    it('keeps the password out of errors, warnings, util.inspect and JSON', async () => {
      const warnings: string[] = [];
      const url = cluster.url.replace('redis://', `redis://nobody:${SECRET}@`);
      const q = queue({ onWarning: (m) => warnings.push(m), connectTimeoutMs: 2000 }, url);
      const error = await q.open().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(QueueConnectionError);
      await expect(q.write('x')).rejects.toBeInstanceOf(QueueConnectionError);
      const shown = `${(error as Error).message} ${(error as Error).stack} ${warnings.join(' ')} ${inspect(q)} ${JSON.stringify(q)}`;
      expect(shown).not.toContain(SECRET);
      expect(shown).toContain('nobody:***@');
    });
  });

  let raw: Cluster | undefined;
  function clusterClient(): Cluster {
    raw ??= new Cluster(cluster.nodes.slice(0, 1).map((node) => ({ host: '127.0.0.1', port: node.port })));
    return raw;
  }
  afterAll(() => raw?.disconnect());

  async function masterClients() {
    await clusterClient().cluster('INFO'); // connected: its node list is known
    return clusterClient().nodes('master');
  }

  /** SCAN on every master: a cluster's keyspace is the union of theirs. */
  async function scanAll(pattern: string): Promise<string[]> {
    const found: string[] = [];
    for (const node of await masterClients()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        found.push(...keys);
      } while (cursor !== '0');
    }
    return found.sort();
  }
});
