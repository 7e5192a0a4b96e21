/**
 * The command registry: the table a consumer looks commands up in, by name.
 * A name is taken once; a second registration names both modules.
 */
import { ConfigError } from '../shared/errors.js';
import type { RegisteredCommand } from './commands.js';

export class CommandRegistry {
  readonly #commands = new Map<string, RegisteredCommand>();

  register(command: RegisteredCommand): void {
    const existing = this.#commands.get(command.name);
    if (existing) {
      throw new ConfigError(
        `command name "${command.name}" is already taken: registered by ${existing.module ?? 'an unknown module'} and again by ${command.module ?? 'an unknown module'}`,
      );
    }
    this.#commands.set(command.name, command);
  }

  get(name: string): RegisteredCommand | undefined {
    return this.#commands.get(name);
  }

  has(name: string): boolean {
    return this.#commands.has(name);
  }

  names(): string[] {
    return [...this.#commands.keys()];
  }

  /** The periodic commands, in registration order. */
  periodic(): RegisteredCommand[] {
    return [...this.#commands.values()].filter((c) => c.schedule !== null);
  }

  /** Removes one command (tests, hot reload). */
  unregister(name: string): boolean {
    return this.#commands.delete(name);
  }

  clear(): void {
    this.#commands.clear();
  }
}

/** The global command registry. */
export const registry = new CommandRegistry();
