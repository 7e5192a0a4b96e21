/**
 * `taskmill/testing`: what a test needs that an application does not.
 *
 * - `runContractSuite(label, target)`: the BaseQueue contract every backend
 *   of taskmill passes, for a third-party backend's own vitest suite.
 * - The consumer's machines, for model-based tests and for `.provide()`-ing
 *   fakes in place of the queue adapter or the command runner.
 *
 * It imports vitest: install vitest (≥ 4) to use it.
 */
export { runContractSuite, type ContractTarget } from './contract.js';
export { supervisorMachine, type SupervisorInput } from '../machines/supervisor.js';
export { workerMachine } from '../machines/worker.js';
export { readerMachine, type ReaderOptions } from '../machines/reader.js';
export { schedulerMachine } from '../machines/scheduler.js';
