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
import { readerMachine } from '../machines/reader.js';
import { EXPANDED } from '../observability/registry.js';
import { schedulerMachine } from '../machines/scheduler.js';

export interface MachineGraph {
  name: string;
  initial: string;
  states: Array<{ id: string; final: boolean }>;
  edges: Array<{ from: string; to: string; events: string[] }>;
}

/**
 * `expand` names a compound state (a dotted path from the root) whose children are drawn in its
 * place, for a machine whose top level says little (the reader is `active` nearly all its life);
 * the heartbeat reports the live state the same way (observability/registry.ts, stateAt).
 */
function graph(name: string, machine: AnyStateMachine, expand?: string): MachineGraph {
  const top = Object.values(machine.root.states) as AnyStateNode[];
  let opened: AnyStateNode | null = null;
  for (const key of expand?.split('.') ?? []) opened = ((opened ?? machine.root).states as Record<string, AnyStateNode>)[key]!;
  const openedTop = opened ? opened.path[0] : null;
  const nodes = [...(opened ? (Object.values(opened.states) as AnyStateNode[]) : []), ...top.filter((n) => n.key !== openedTop)];
  const nodeOf = (node: AnyStateNode): string | null => {
    let n: AnyStateNode | undefined = node;
    while (n && n.parent !== machine.root && n.parent !== opened) n = n.parent;
    if (!n || n === machine.root) return null;
    // A target on the expanded path itself (or above it) enters its initial child.
    if (opened && n.key === openedTop && n.parent === machine.root) return String(opened.initial?.target[0]?.key ?? nodes[0]!.key);
    return n.key;
  };
  const edges = new Map<string, { from: string; to: string; events: Set<string> }>();
  const add = (from: string, to: string, event: string) => {
    // xstate's own event names, shortened: `after drainTimeout`, `error.actor queue`.
    if (event.startsWith('xstate.after.')) event = `after ${event.slice('xstate.after.'.length).split('.')[0]}`;
    else if (event.startsWith('xstate.')) event = event.replace(/^xstate\.(done\.actor|error\.actor)\.?/, '$1 ');
    const key = `${from}\u0000${to}`;
    if (!edges.has(key)) edges.set(key, { from, to, events: new Set() });
    edges.get(key)!.events.add(event.trim() || 'always');
  };
  // Transitions of the root, and of the expanded path, apply in every node below them: drawn from each.
  const shared: AnyStateNode[] = [machine.root];
  for (let n = opened; n && n !== machine.root; n = n.parent!) shared.push(n);
  const sources: Array<[string | null, AnyStateNode, boolean]> = [
    ...shared.map((n): [string | null, AnyStateNode, boolean] => [null, n, n !== machine.root]),
    ...nodes.map((n): [string, AnyStateNode, boolean] => [n.key, n, true]),
  ];
  const openedKeys = new Set(opened ? Object.keys(opened.states) : []);
  for (const [from, node, deep] of sources) {
    const walk = (n: AnyStateNode): void => {
      // Eventless (`always`) transitions are kept apart from the event-keyed ones.
      const always = (n.always ?? []) as Array<{ target?: readonly AnyStateNode[] }>;
      for (const [event, list] of [...n.transitions, ['always', always] as const]) {
        for (const t of list as Array<{ target?: readonly AnyStateNode[] }>) {
          for (const target of t.target ?? []) {
            const to = nodeOf(target);
            if (to === null) continue;
            if (from === null) {
              const within = node === machine.root ? nodes : nodes.filter((s) => openedKeys.has(s.key));
              for (const s of within) if (s.type !== 'final' && s.key !== to) add(s.key, to, event);
            } else if (to !== from) add(from, to, event);
          }
        }
      }
      if (deep && from !== null) for (const child of Object.values(n.states) as AnyStateNode[]) walk(child);
    };
    walk(node);
  }
  const initialTop = String(machine.root.initial?.target[0]?.key ?? top[0]?.key);
  return {
    name,
    initial: opened && initialTop === openedTop ? String(opened.initial?.target[0]?.key ?? nodes[0]!.key) : initialTop,
    states: nodes.map((n) => ({ id: n.key, final: n.type === 'final' })),
    edges: [...edges.values()].map((e) => ({ from: e.from, to: e.to, events: [...e.events] })),
  };
}

/** The machines the page shows, with each live actor's state marked (from the consumers' heartbeats): per consumer one supervisor, one reader, one scheduler, N workers. */
export const MACHINE_GRAPHS: readonly MachineGraph[] = [
  graph('supervisor', supervisorMachine),
  graph('reader', readerMachine, EXPANDED.reader),
  graph('worker', workerMachine),
  graph('scheduler', schedulerMachine, EXPANDED.scheduler),
];
