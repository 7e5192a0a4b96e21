/**
 * Who may watch: the relay listens on a loopback address only, serves its
 * page and WebSocket only with the token, only to its own Host and Origin,
 * and relays nothing a viewer sends.
 */
import http from 'node:http';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { assign, createActor, createMachine } from 'xstate';
import { ConfigError } from '../../src/shared/errors.js';
import { startInspector, type InspectorRelay } from '../../src/inspect/index.js';
import { waitFor } from '../helpers/processes.js';

const relays: InspectorRelay[] = [];
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

async function relay(options: Parameters<typeof startInspector>[0] = {}): Promise<InspectorRelay> {
  const started = await startInspector(options);
  relays.push(started);
  return started;
}

/** Resolves with the HTTP status of a refused upgrade, or 101 when the socket opens. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', (error) => reject(error));
  });
}

function get(port: number, path: string, host = `127.0.0.1:${port}`): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += String(chunk)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function connectError(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

const externalAddresses = Object.values(networkInterfaces())
  .flat()
  .filter((a) => a && !a.internal && a.family === 'IPv4')
  .map((a) => a!.address);

describe('where the relay listens', () => {
  it('binds 127.0.0.1 by default: other addresses of this machine refuse connections', async () => {
    const r = await relay();
    expect(r.host).toBe('127.0.0.1');
    expect(r.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${r.port}/\\?token=[A-Za-z0-9_-]{22}$`));
    expect(r.wsUrl).toBe(r.url.replace('http://', 'ws://'));
    expect(await connectError('127.0.0.1', r.port)).toBe('connected');
    // 127.0.0.2 is this machine too, but not the bound address.
    expect(await connectError('127.0.0.2', r.port)).toBe('ECONNREFUSED');
    for (const address of externalAddresses) expect(await connectError(address, r.port), address).toBe('ECONNREFUSED');
  });

  it.each(['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '::ffff:127.0.0.1', ''])('refuses host %j', async (host) => {
    const attempt = startInspector({ host });
    await expect(attempt).rejects.toThrow(ConfigError);
    await expect(attempt).rejects.toThrow(/loopback/);
  });

  it('accepts localhost (as 127.0.0.1) and rejects bad ports and tokens', async () => {
    expect((await relay({ host: 'localhost' })).host).toBe('127.0.0.1');
    const v6 = await relay({ host: '::1' });
    expect(v6.url).toMatch(/^http:\/\/\[::1\]:\d+\/\?token=/);
    expect(await upgradeStatus(v6.wsUrl)).toBe(101);
    await expect(startInspector({ port: 70_000 })).rejects.toThrow(/port must be an integer from 0 to 65535/);
    await expect(startInspector({ port: 1.5 })).rejects.toThrow(ConfigError);
    await expect(startInspector({ token: 'short' })).rejects.toThrow(/token/);
    await expect(startInspector({ inspectorUrl: 'javascript:alert(1)' })).rejects.toThrow(/http\(s\) URL/);
  });

  it('a port in use is a clear error', async () => {
    const r = await relay();
    await expect(startInspector({ port: r.port })).rejects.toThrow(new RegExp(`inspector cannot listen on 127\\.0\\.0\\.1:${r.port}: the port is in use`));
  });
});

describe('who may watch', () => {
  it('the WebSocket needs the token, our Host and no foreign Origin', async () => {
    const r = await relay();
    const base = `ws://127.0.0.1:${r.port}/`;
    expect(await upgradeStatus(r.wsUrl)).toBe(101);
    expect(await upgradeStatus(base)).toBe(403);
    expect(await upgradeStatus(`${base}?token=${'x'.repeat(22)}`)).toBe(403);
    expect(await upgradeStatus(r.wsUrl, { Origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(r.wsUrl, { Origin: `http://127.0.0.1:${r.port}` })).toBe(101);
    expect(await upgradeStatus(r.wsUrl, { Host: `evil.example:${r.port}` })).toBe(403);
    expect(await upgradeStatus(r.wsUrl, { Host: `localhost:${r.port}`, Origin: `http://localhost:${r.port}` })).toBe(101);
  });

  it('the bridge page needs the token and our Host, embeds the Stately inspector and sends no Referer', async () => {
    const r = await relay();
    const token = new URL(r.url).searchParams.get('token')!;
    expect((await get(r.port, '/')).status).toBe(401);
    expect((await get(r.port, '/?token=wrong')).status).toBe(401);
    expect((await get(r.port, `/?token=${token}`, `evil.example:${r.port}`)).status).toBe(403);
    const page = await get(r.port, `/?token=${token}`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.body).toContain('<iframe id="inspector" referrerpolicy="no-referrer" src="https://stately.ai/inspect"');
    expect(page.body).toContain(`encodeURIComponent("${token}")`);
  });

  it("the bridge page's script buffers until the inspector frame is ready, then posts to that frame's origin only", async () => {
    const r = await relay({ inspectorUrl: 'https://inspector.example/inspect' });
    const page = await get(r.port, new URL(r.url).pathname + new URL(r.url).search);
    const code = /<script>([\s\S]*)<\/script>/.exec(page.body)![1]!;
    const posted: [unknown, string][] = [];
    const frameWindow = { postMessage: (event: unknown, origin: string) => void posted.push([event, origin]) };
    const listeners: ((e: unknown) => void)[] = [];
    const sockets: { url: string; onmessage?: (e: { data: string }) => void }[] = [];
    let reloads = 0;
    vm.runInNewContext(code, {
      document: { getElementById: () => ({ contentWindow: frameWindow }), title: '' },
      window: { addEventListener: (_type: string, fn: (e: unknown) => void) => void listeners.push(fn) },
      location: { host: `127.0.0.1:${r.port}`, reload: () => void reloads++ },
      WebSocket: class {
        onmessage?: (e: { data: string }) => void;
        constructor(readonly url: string) {
          sockets.push(this);
        }
      },
    });
    expect(sockets[0]!.url).toBe(r.wsUrl);
    const receive = (event: object) => sockets[0]!.onmessage!({ data: JSON.stringify(event) });
    const fromFrame = (data: object, origin = 'https://inspector.example') => listeners.forEach((fn) => fn({ source: frameWindow, origin, data }));

    receive({ type: '@xstate.actor', n: 1 });
    expect(posted).toEqual([]);
    listeners.forEach((fn) => fn({ source: {}, origin: 'https://evil.example', data: { type: '@statelyai.connected' } }));
    expect(posted).toEqual([]); // not our frame
    fromFrame({ type: '@statelyai.connected' }, 'https://www.inspector.example');
    receive({ type: '@xstate.event', n: 2 });
    expect(posted).toEqual([
      [{ type: '@xstate.actor', n: 1 }, 'https://www.inspector.example'],
      [{ type: '@xstate.event', n: 2 }, 'https://www.inspector.example'],
    ]);
    fromFrame({ type: '@statelyai.connected' });
    expect(reloads).toBe(1);
  });

  it('relays nothing a viewer sends, and close() disconnects viewers', async () => {
    const r = await relay();
    const a = new WebSocket(r.wsUrl);
    const b = new WebSocket(r.wsUrl);
    const received: string[] = [];
    b.on('message', (data) => received.push(String(data)));
    await Promise.all([a, b].map((ws) => new Promise((resolve) => ws.once('open', resolve))));
    a.send(JSON.stringify({ type: '@xstate.event', sessionId: 'x:0', event: { type: 'INJECTED' } }));

    // A real event afterwards proves b is listening; the injected one never arrives.
    const actor = createActor(createMachine({ id: 'probe', initial: 'a', states: { a: { on: { GO: 'b' } }, b: {} } }), { inspect: r.inspect });
    actor.start();
    actor.send({ type: 'GO' });
    await waitFor('the probe seen', () => received.some((t) => t.includes('"GO"')));
    expect(received.some((t) => t.includes('INJECTED'))).toBe(false);

    const closed = new Promise<number>((resolve) => b.once('close', (code) => resolve(code)));
    await r.close();
    expect(await closed).toBe(1001);
    expect(await connectError('127.0.0.1', r.port)).toBe('ECONNREFUSED');
  });
});

describe('inspect and attach', () => {
  it('an actor given both is observed once', async () => {
    const r = await relay();
    const actor = createActor(createMachine({ id: 'both', on: { GO: {} } }), { inspect: r.inspect });
    r.attach(actor);
    actor.start();
    const ws = new WebSocket(r.wsUrl);
    const received: string[] = [];
    ws.on('message', (data) => received.push(String(data)));
    await new Promise((resolve) => ws.once('open', resolve));
    actor.send({ type: 'GO' });
    actor.send({ type: 'GO' });
    await waitFor('both GO snapshots', () => received.filter((t) => t.includes('"@xstate.snapshot"') && t.includes('"GO"')).length >= 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(received.filter((t) => t.includes('"@xstate.event"') && t.includes('"GO"'))).toHaveLength(2);
    ws.close();
    actor.stop();
  });
});

describe('a viewer that cannot keep up', () => {
  it('misses messages while more than 4 MiB behind, then gets the live actors again before the next message', async () => {
    const r = await relay();
    const ws = new WebSocket(r.wsUrl);
    const received: { type: string; name?: string; event?: { type: string } }[] = [];
    ws.on('message', (data) => received.push(JSON.parse(String(data)) as (typeof received)[number]));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.pause(); // stops reading: the relay's send buffer for it fills up

    const note = 'n'.repeat(20_000);
    const machine = createMachine({
      id: 'probe',
      context: { note, count: 0 },
      on: { TICK: { actions: assign({ count: ({ context }) => context.count + 1 }) }, LAST: {} },
    });
    const actor = createActor(machine, { inspect: r.inspect });
    actor.start();
    for (let i = 0; i < 2_000 && r.stats().dropped === 0; i++) {
      actor.send({ type: 'TICK' });
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(r.stats().dropped).toBeGreaterThan(0);

    ws.resume();
    await waitFor('the backlog drained', () => received.length === r.stats().sent);
    const before = received.length;
    actor.send({ type: 'LAST' });
    await waitFor('LAST seen', () => received.some((m) => m.event?.type === 'LAST'));
    const after = received.slice(before);
    expect(after[0]).toMatchObject({ type: '@xstate.actor', name: 'probe' });
    expect(after.findIndex((m) => m.event?.type === 'LAST')).toBeGreaterThan(0);
    actor.stop();
  });
});
