/**
 * The consumer's machines as graphs the dashboard page draws itself (no
 * renderer shipped, nothing loaded): each top-level state, and one edge per
 * (source, target) pair naming the events that take it. Read off the machine
 * definitions, as scripts/diagrams.ts does for the Mermaid diagrams, so the
 * page cannot drift from the code either.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { supervisorMachine } from '../machines/supervisor.js';
import { workerMachine } from '../machines/worker.js';

export interface MachineGraph {
  name: string;
  initial: string;
  states: Array<{ id: string; final: boolean }>;
  edges: Array<{ from: string; to: string; events: string[] }>;
}

function graph(name: string, machine: AnyStateMachine): MachineGraph {
  const top = Object.values(machine.root.states) as AnyStateNode[];
  const topOf = (node: AnyStateNode): string | null => {
    let n: AnyStateNode | undefined = node;
    while (n && n.parent !== machine.root) n = n.parent;
    return n ? n.key : null;
  };
  const edges = new Map<string, { from: string; to: string; events: Set<string> }>();
  const add = (from: string, to: string, event: string) => {
    // xstate's own event names, shortened: `after drainTimeout`, `error.actor queue`.
    if (event.startsWith('xstate.after.')) event = `after ${event.slice('xstate.after.'.length).split('.')[0]}`;
    else if (event.startsWith('xstate.')) event = event.replace(/^xstate\.(done\.actor|error\.actor)\.?/, '$1 ');
    const key = `${from}\u0000${to}`;
    if (!edges.has(key)) edges.set(key, { from, to, events: new Set() });
    edges.get(key)!.events.add(event.trim());
  };
  const sources: Array<[string | null, AnyStateNode]> = [[null, machine.root], ...top.map((n): [string, AnyStateNode] => [n.key, n])];
  for (const [from, node] of sources) {
    const walk = (n: AnyStateNode): void => {
      for (const [event, list] of n.transitions) {
        for (const t of list) {
          for (const target of t.target ?? []) {
            const to = topOf(target);
            // Transitions of the machine itself apply in every state: drawn from each state they leave.
            if (to === null) continue;
            if (from === null) for (const s of top) if (s.type !== 'final' && s.key !== to) add(s.key, to, event);
            if (from !== null && to !== from) add(from, to, event);
          }
        }
      }
      if (from !== null) for (const child of Object.values(n.states) as AnyStateNode[]) walk(child);
    };
    walk(node);
  }
  return {
    name,
    initial: String(machine.root.initial?.target[0]?.key ?? top[0]?.key),
    states: top.map((n) => ({ id: n.key, final: n.type === 'final' })),
    edges: [...edges.values()].map((e) => ({ from: e.from, to: e.to, events: [...e.events] })),
  };
}

/** The machines the page shows, with each live actor's state marked: the supervisor (one per consumer) and the worker. */
export const MACHINE_GRAPHS: readonly MachineGraph[] = [graph('supervisor', supervisorMachine), graph('worker', workerMachine)];
