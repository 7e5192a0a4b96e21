import { describe } from 'vitest';
import { RedisBlockingQueue, RedisQueue } from '../../src/backends/redis.js';
import { REDIS_URL, hasRedis } from '../helpers/services.js';
import { runContractSuite } from './contract.js';

describe.skipIf(!hasRedis)('redis', () => {
  runContractSuite('RedisQueue', { create: (options) => new RedisQueue(REDIS_URL, options) });
  runContractSuite('RedisBlockingQueue', { create: (options) => new RedisBlockingQueue(REDIS_URL, options) });
});
