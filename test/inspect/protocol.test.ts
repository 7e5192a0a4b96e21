/**
 * The relay speaks the Stately inspector's protocol: for the same actor
 * system, what a viewer receives matches what @statelyai/inspect itself
 * would send (same messages, ids, parents, definitions, states and version),
 * field for field wherever no sanitising applies.
 */
import { createInspector } from '@statelyai/inspect';
import { afterEach, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { assign, createActor, fromCallback, sendTo, setup, spawnChild, type InspectionEvent } from 'xstate';
import { startInspector, type InspectorMessage, type InspectorRelay } from '../../src/inspect/index.js';
import { waitFor } from '../helpers/processes.js';

const relays: InspectorRelay[] = [];
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

const child = setup({}).createMachine({
  id: 'child',
  context: { n: 0 },
  initial: 'idle',
  states: {
    idle: { on: { PING: { target: 'busy', actions: assign({ n: ({ context }) => context.n + 1 }) } } },
    busy: { on: { PING: 'idle' } },
  },
});
const parent = setup({ actors: { child, ticker: fromCallback(() => () => {}) } }).createMachine({
  id: 'parent',
  context: { pokes: 0 },
  invoke: { id: 'ticker', src: 'ticker' },
  initial: 'on',
  states: {
    on: {
      entry: spawnChild('child', { id: 'kid', systemId: 'kid' }),
      on: { POKE: { actions: [assign({ pokes: ({ context }) => context.pokes + 1 }), sendTo('kid', { type: 'PING' })] } },
    },
  },
});

it('a viewer receives what @statelyai/inspect would send', async () => {
  const relay = await startInspector();
  relays.push(relay);
  const ws = new WebSocket(relay.wsUrl);
  const ours: InspectorMessage[] = [];
  ws.on('message', (data) => ours.push(JSON.parse(String(data)) as InspectorMessage));
  await new Promise((resolve) => ws.once('open', resolve));

  const theirs: InspectorMessage[] = [];
  const library = createInspector({ send: (event: unknown) => void theirs.push(JSON.parse(JSON.stringify(event)) as InspectorMessage), start() {}, stop() {} });
  const actor = createActor(parent, {
    inspect: (event: InspectionEvent) => {
      relay.inspect(event);
      library.inspect.next?.(event);
    },
  });
  actor.start();
  actor.send({ type: 'POKE' });
  actor.send({ type: 'POKE' });
  actor.stop();
  await waitFor('both streams complete', () => ours.length > 0 && ours.length === theirs.length, 5_000, 10);
  ws.close();

  const byType = (messages: InspectorMessage[], type: string) => messages.filter((m) => m.type === type);
  for (const type of ['@xstate.actor', '@xstate.event', '@xstate.snapshot']) {
    expect(byType(ours, type).length, type).toBe(byType(theirs, type).length);
    expect(byType(ours, type).length, type).toBeGreaterThan(0);
  }
  for (const [mine, reference] of ours.map((m, i) => [m, theirs[i]!] as const)) {
    // Every field the library sends is there (ours may add none that it lacks, beyond sanitising).
    expect(Object.keys(mine).sort()).toEqual(Object.keys(reference).sort());
    expect(mine._version).toBe(reference._version);
  }

  const actorsOf = (messages: InspectorMessage[]) =>
    byType(messages, '@xstate.actor')
      .map((m) => ({
        name: m.name,
        sessionId: m.sessionId,
        parentId: m.parentId,
        rootId: m.rootId,
        definition: JSON.parse(m.definition as string) as unknown,
        value: (m.snapshot as { value?: unknown }).value,
      }))
      .sort((a, b) => a.sessionId.localeCompare(b.sessionId));
  expect(actorsOf(ours)).toEqual(actorsOf(theirs));
  expect(actorsOf(ours).map((a) => a.name)).toEqual(['parent', 'ticker', 'kid']);

  const eventsOf = (messages: InspectorMessage[]) =>
    byType(messages, '@xstate.event').map((m) => ({ sessionId: m.sessionId, sourceId: m.sourceId, rootId: m.rootId, event: m.event }));
  expect(eventsOf(ours)).toEqual(eventsOf(theirs));

  const snapshotsOf = (messages: InspectorMessage[]) =>
    byType(messages, '@xstate.snapshot').map((m) => {
      const { status, value, context, children } = m.snapshot as Record<string, unknown>;
      return { sessionId: m.sessionId, rootId: m.rootId, event: m.event, status, value, context, children };
    });
  expect(snapshotsOf(ours)).toEqual(snapshotsOf(theirs));
});
