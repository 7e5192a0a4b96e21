/**
 * Operations on the failed store that understand envelopes (the backends
 * only move opaque messages): re-queue failed jobs as fresh attempts.
 */
import type { BaseQueue } from '../backends/base.js';
import { getSettings } from './settings.js';
import { DEFAULT_RESULT_TTL_MS, resultRecord } from './results.js';

const PAGE = 500;

/**
 * Re-queues failed jobs (the given failed-message ids, or all) as attempt 1,
 * so they get their command's full `retries` again, and marks their result
 * 'retrying' so `job.result()` waits for the new run. The job id is kept.
 * Messages that are not valid envelopes go back unchanged (they will be
 * rejected again). Resolves with how many were re-queued.
 */
export async function retryFailed(queue: BaseQueue, ids?: readonly string[]): Promise<number> {
  const wanted = ids ? new Set(ids) : null;
  const ttlMs = getSettings().resultTtlMs ?? DEFAULT_RESULT_TTL_MS;
  let count = 0;
  const seen = new Set<string>();
  for (;;) {
    const page = (await queue.failed(wanted ? Math.max(PAGE, wanted.size) : PAGE)).filter((f) => !seen.has(f.id) && (!wanted || wanted.has(f.id)));
    if (page.length === 0) return count;
    for (const failed of page) {
      seen.add(failed.id);
      let envelope: Record<string, unknown> | null = null;
      try {
        const parsed = JSON.parse(failed.data) as unknown;
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && typeof (parsed as { id?: unknown }).id === 'string') {
          envelope = parsed as Record<string, unknown>;
        }
      } catch {
        envelope = null;
      }
      if (!envelope) {
        count += await queue.requeueFailed([failed.id]);
        continue;
      }
      envelope.attempt = 1;
      // Write first, then drop the failed copy: a crash in between can only duplicate the job (at-least-once).
      await queue.write(JSON.stringify(envelope));
      await queue.purgeFailed([failed.id]);
      await queue.setResults([{ jobId: envelope.id as string, record: resultRecord({ status: 'retrying', attempt: 0, at: Date.now() }), ttlMs }]);
      count++;
    }
    if (wanted && page.length >= wanted.size) return count;
  }
}
