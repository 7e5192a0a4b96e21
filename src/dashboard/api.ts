/**
 * The dashboard's JSON API and /metrics, as one request handler for node:http
 * or express (`createDashboard`). Everything it shows comes from the backend:
 * queue stats, the consumer registry (observability/registry.ts), the failed
 * store and the results store, so it needs only the queue.
 *
 * Access: every request needs the dashboard's token, as `Authorization:
 * Bearer TOKEN` or `?token=TOKEN` (the link `taskmill dashboard` prints);
 * missing → 401, wrong → 403. Actions that change data (POST) take it only
 * from the header — a cross-site form or image cannot set one, which is what
 * makes them CSRF-safe — and refuse a request whose Origin is another site.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BaseQueue } from '../backends/base.js';
import { createQueue } from '../backends/index.js';
import { ConfigError, describeValue, toError } from '../shared/errors.js';
import { decodeMessage, deserializeValue, MAX_JOB_ID_LENGTH } from '../codec/message.js';
import { sanitizeValue } from '../inspect/sanitize.js';
import { describeMessage, redactSecrets, showArgs, type ConsumerState } from '../observability/registry.js';
import { THROUGHPUT_BUCKET_MS, THROUGHPUT_WINDOW_MS } from '../backends/control.js';
import { progressKey, progressValue } from '../producer/progress.js';
import { parseResultRecord } from '../producer/results.js';
import { promClient } from '../backends/drivers.js';
import { dashboardPage } from './page.js';
import { MACHINE_GRAPHS } from './machines.js';

export interface DashboardOptions {
  /** The queue (a BaseQueue, or a URL opened here and closed with the dashboard). */
  queue: BaseQueue | string;
  /** Queue names on the same server to show (needs `queue` as a URL). Default: just `queue`. */
  queues?: readonly string[];
  /** The access token. Default: 24 random bytes, base64url. */
  token?: string;
}

export interface Dashboard {
  /** Handles one request; mount it in node:http (`createServer(d.handler)`) or express (`app.use(d.handler)`). Unbound: pass it as is. */
  handler(this: void, req: IncomingMessage, res: ServerResponse): void;
  readonly token: string;
  /** Closes the queues it opened. */
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function createDashboard(options: DashboardOptions): Dashboard {
  const { queue, queues: names } = options;
  const token = options.token ?? randomBytes(24).toString('base64url');
  if (typeof token !== 'string' || token.length < 16)
    throw new ConfigError(`createDashboard: invalid token ${describeValue(token)}: must be a string of at least 16 characters`);
  let members: BaseQueue[];
  const owned = typeof queue === 'string';
  if (typeof queue === 'string') members = (names ?? ['default']).map((name) => createQueue(queue, { name }));
  else if (queue instanceof BaseQueue) {
    if (names !== undefined) throw new ConfigError('createDashboard: queues needs queue as a URL (the queues are opened on its server), not a BaseQueue');
    members = [queue];
  } else throw new ConfigError(`createDashboard: queue must be a BaseQueue or a queue URL, got ${describeValue(queue)}`);
  const byName = new Map(members.map((m) => [m.name, m]));
  const pick = (name: string | null): BaseQueue => {
    const found = byName.get(name ?? members[0]!.name);
    if (!found) throw new HttpError(404, `no queue ${JSON.stringify(name)} here; this dashboard shows ${[...byName.keys()].join(', ')}`);
    return found;
  };

  const prom = promClient();
  const registry = new prom.Registry();
  new prom.Gauge({
    name: 'taskmill_queue_jobs',
    help: 'Jobs in the queue by state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const m of members) {
        const stats = await m.stats();
        for (const state of ['ready', 'leased', 'delayed', 'failed'] as const) this.set({ queue: m.name, state }, stats[state] ?? 0);
      }
    },
  });

  const expected = Buffer.from(token);
  const matches = (given: string | null | undefined): boolean => {
    if (!given) return false;
    const got = Buffer.from(given);
    return got.length === expected.length && timingSafeEqual(got, expected);
  };

  const routes = async (req: IncomingMessage, url: URL): Promise<{ status?: number; body: unknown; text?: string; type?: string; csp?: string }> => {
    const method = req.method ?? 'GET';
    // The page holds no data (it asks the API, with the token), so it is served to anyone who asks.
    if (method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
      const nonce = randomBytes(16).toString('base64');
      return { body: null, text: dashboardPage(nonce), type: 'text/html; charset=utf-8', csp: pageCsp(nonce) };
    }
    if (method === 'GET' && url.pathname === '/favicon.ico') return { status: 204, body: null, text: '' };
    const header = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const given = header ?? url.searchParams.get('token');
    if (!given) throw new HttpError(401, 'a token is needed: Authorization: Bearer TOKEN (or ?token= on GET)');
    if (!matches(given)) throw new HttpError(403, 'wrong token');
    if (method === 'POST') {
      if (!header) throw new HttpError(403, 'actions take the token from the Authorization header only');
      const origin = req.headers.origin;
      if (origin !== undefined && originHost(origin) !== req.headers.host) throw new HttpError(403, `cross-site request from ${origin} refused`);
    }
    const path = url.pathname;
    if (method === 'GET' && path === '/metrics') return { body: null, text: await registry.metrics(), type: registry.contentType };
    if (method === 'GET' && path === '/api/machines') return { body: MACHINE_GRAPHS };
    if (method === 'GET' && path === '/api/queues') {
      return { body: await Promise.all(members.map(async (m) => ({ name: m.name, ...(await m.stats()) }))) };
    }
    if (method === 'GET' && path === '/api/throughput') {
      const now = Date.now();
      const minutes = THROUGHPUT_WINDOW_MS / THROUGHPUT_BUCKET_MS;
      const to = now - (now % THROUGHPUT_BUCKET_MS);
      return {
        body: {
          bucketMs: THROUGHPUT_BUCKET_MS,
          from: to - (minutes - 1) * THROUGHPUT_BUCKET_MS,
          to,
          queues: await Promise.all(members.map(async (m) => ({ name: m.name, buckets: await m.throughput() }))),
        },
      };
    }
    if (method === 'GET' && path === '/api/consumers') {
      const seen = new Map<string, unknown>();
      for (const m of members) {
        for (const c of await m.consumers()) if (!seen.has(c.id)) seen.set(c.id, { id: c.id, seenAt: c.seenAt, ...(JSON.parse(c.state) as object) });
      }
      return { body: [...seen.values()] };
    }
    if (method === 'GET' && path === '/api/failed') {
      const target = pick(url.searchParams.get('queue'));
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, 1000);
      return { body: (await target.failed(limit)).map((f) => ({ queue: target.name, ...describeFailed(f) })) };
    }
    if (method === 'POST' && (path === '/api/failed/retry' || path === '/api/failed/purge')) {
      const body = (await readJson(req)) as { queue?: unknown; ids?: unknown };
      const target = pick(typeof body.queue === 'string' ? body.queue : null);
      const ids = body.ids;
      if (ids !== undefined && !(Array.isArray(ids) && ids.every((id) => typeof id === 'string')))
        throw new HttpError(400, 'ids must be a list of failed message ids');
      const list = ids;
      const count = path.endsWith('retry') ? await target.requeueFailed(list) : await target.purgeFailed(list);
      return { body: path.endsWith('retry') ? { requeued: count } : { purged: count } };
    }
    const job = /^\/api\/jobs\/([^/]+)$/.exec(path);
    if (method === 'GET' && job) {
      const target = pick(url.searchParams.get('queue'));
      const id = decodePathPart(job[1]!);
      // No job has a longer id (the codec refuses one), and findJob would refuse it.
      if (id.length > MAX_JOB_ID_LENGTH)
        throw new HttpError(404, `no job ${JSON.stringify(id.slice(0, 40))}… in queue ${target.name}: ids have at most ${MAX_JOB_ID_LENGTH} characters`);
      const [record, progress, running, failed, queued] = await Promise.all([
        target.getResult(id),
        target.getResult(progressKey(id)),
        findRunning(target, id),
        findFailed(target, id),
        target.findJob(id, LOOKUP_LIMIT),
      ]);
      if (record === null && progress === null && running === null && failed === null && queued === null) {
        throw new HttpError(
          404,
          `no job ${id} in queue ${target.name} (unknown, not among the first ${LOOKUP_LIMIT} waiting or delayed, or its record expired)`,
        );
      }
      const result = record === null ? null : parseResultRecord(record);
      // The arguments travel with the message: shown while it waits, while a worker runs it, or while the failed store keeps it.
      const waiting = queued ? describeMessage(queued.id, queued.data) : null;
      const source = running ?? failed ?? waiting;
      return {
        body: {
          id,
          queue: target.name,
          status: running ? 'running' : failed ? 'failed' : (queued?.state ?? result?.status ?? 'pending'),
          command: source?.command ?? null,
          args: source ? source.args : null,
          argsFrom: running ? 'running' : failed ? 'failed store' : (queued?.state ?? null),
          worker: running ? { consumer: running.consumer, id: running.worker } : null,
          attempt: result?.attempt ?? failed?.attempt ?? null,
          at: result?.at ?? null,
          error: result?.error ?? failed?.error ?? null,
          result: result?.value === undefined ? null : redactSecrets(sanitizeValue(deserializeValue(result.value))),
          progress: progress === null ? null : sanitizeValue(progressValue(progress)),
        },
      };
    }
    throw new HttpError(404, `nothing at ${method} ${path}`);
  };

  return {
    token,
    handler(req, res) {
      const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
      routes(req, url).then(
        ({ status = 200, body, text, type, csp }) => {
          res.writeHead(status, {
            'content-type': type ?? 'application/json',
            'cache-control': 'no-store',
            'x-content-type-options': 'nosniff',
            ...(csp ? { 'content-security-policy': csp, 'referrer-policy': 'no-referrer' } : {}),
          });
          res.end(text ?? JSON.stringify(body));
        },
        (error: unknown) => {
          const status = error instanceof HttpError ? error.status : 500;
          res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify({ error: toError(error).message }));
        },
      );
    },
    async close() {
      if (owned) await Promise.all(members.map((m) => m.close()));
    },
  };
}

/**
 * How many messages a job's page looks through for its id, of the failed store (oldest first, as
 * failed() lists them), of the waiting ones (in claim order) and of the delayed ones (soonest
 * first): no backend has an index by job id.
 */
const LOOKUP_LIMIT = 1_000;

/** Job `id` as a live consumer's worker reports it running (heartbeat state), or null. */
async function findRunning(queue: BaseQueue, id: string) {
  for (const c of await queue.consumers()) {
    let state: Partial<ConsumerState>;
    try {
      state = JSON.parse(c.state) as Partial<ConsumerState>;
    } catch {
      continue;
    }
    for (const w of state.workers ?? []) if (w.running?.id === id) return { consumer: c.id, worker: w.id, command: w.running.command, args: w.running.args };
  }
  return null;
}

/** Job `id` among the first LOOKUP_LIMIT failed messages, or null. */
async function findFailed(queue: BaseQueue, id: string) {
  for (const f of await queue.failed(LOOKUP_LIMIT)) {
    if (!f.data.includes(id)) continue; // most are not it: skip decoding them
    const shown = describeFailed(f);
    if (shown.jobId === id) return shown;
  }
  return null;
}

/** A failed message as the API shows it: its command, job id and arguments (sanitised, secrets redacted), never the raw payload. */
function describeFailed(f: { id: string; data: string; attempt: number; error: string; failedAt: Date }) {
  let command: string | null = null;
  let jobId: string | null = null;
  let args: unknown = null;
  try {
    const envelope = decodeMessage(f.data);
    command = envelope.command;
    jobId = envelope.id;
    args = showArgs(envelope.args);
  } catch {
    // Not a taskmill envelope (hostile or foreign input): its error says why it failed.
  }
  return { id: f.id, command, jobId, args, attempt: f.attempt, error: f.error, failedAt: f.failedAt.toISOString() };
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in ${JSON.stringify(part.slice(0, 80))}`);
  }
}

/** The page may run its own script and talk to this server, nothing else: no CDN, no request leaves. */
function pageCsp(nonce: string): string {
  return `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
}

/** The host of an Origin header; null for 'null' or anything unparsable (refused). */
function originHost(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value;
  } catch {
    throw new HttpError(400, 'the body must be a JSON object');
  }
}
