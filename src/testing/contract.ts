/**
 * The shared BaseQueue contract suite. Every backend's test file calls
 * `runContractSuite(label, target)`; this file is not a test file itself.
 *
 * Every test uses its own queue name (suites for shared Redis/PostgreSQL
 * servers run in parallel) and every queue opened here is closed afterwards.
 * Lease tests use short leases (≥ 100 ms, the BaseQueue minimum) and wait
 * past them: they assert what happens before and after a deadline, never
 * how fast anything is.
 *
 * The tests live by area in contract/ (kit.ts holds what they share); this
 * module runs them in one describe, in the order they always ran.
 */
import { afterAll, describe } from 'vitest';
import { describeStatsLengthFlush, describeWriteReadAck } from './contract/basics.js';
import { describeControl } from './contract/control.js';
import { describeGates } from './contract/gates.js';
import { describeFailedStore } from './contract/failed-store.js';
import { describeFencing } from './contract/fencing.js';
import { describeJobLifecycle } from './contract/job-lifecycle.js';
import { contractHarness, type ContractTarget } from './contract/kit.js';
import { describeConcurrency, describeLeases } from './contract/leases.js';
import { describeLifecycleAndIsolation } from './contract/lifecycle.js';
import { describePriorities } from './contract/priorities.js';
import { describeUnique } from './contract/unique.js';
import { describeSlots } from './contract/slots.js';

export type { ContractTarget } from './contract/kit.js';

export function runContractSuite(label: string, target: ContractTarget): void {
  describe(`${label}: BaseQueue contract`, () => {
    const harness = contractHarness(target);

    afterAll(async () => {
      await target.cleanup?.();
    });

    describeWriteReadAck(harness);
    describeLeases(harness);
    describeConcurrency(harness);
    describeFencing(harness);
    describeFailedStore(harness);
    describeStatsLengthFlush(harness);
    describeSlots(harness);
    describeLifecycleAndIsolation(harness);
    describeJobLifecycle(harness);
    describePriorities(harness);
    describeUnique(harness);
    describeGates(harness);
    describeControl(harness);
  });
}
