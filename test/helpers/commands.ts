/**
 * Commands a test file defines on the process-wide registry, and their
 * removal after each test (a later test may reuse nothing by accident).
 */
import { queueCommand, registry, type JobContext } from '../../src/index.js';

const defined: string[] = [];

/** queueCommand with `this: JobContext` and loose option types, remembered for forgetCommands(). */
export function define<A extends unknown[]>(options: Parameters<typeof queueCommand>[0] & object, fn: (this: JobContext, ...args: A) => unknown) {
  const cmd = queueCommand(options as never, fn as never) as unknown as ReturnType<typeof queueCommand<A, unknown>>;
  defined.push(cmd.commandName);
  return cmd;
}

/** Unregisters every command define() registered (call it in afterEach, after stopping consumers). */
export function forgetCommands(): void {
  for (const name of defined.splice(0)) registry.unregister(name);
}
