/**
 * The CLI's pretty output (a terminal): one line per event, and a failure
 * shows its message and the command's own frames — not taskmill's, xstate's
 * or Node's. Files and pipes keep JSON (test/cli/logging.test.ts).
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pino from 'pino';
import pinoPretty from 'pino-pretty';
import { describe, expect, it } from 'vitest';
import { PRETTY_ONE_LINE } from '../../src/cli/logging.js';
import { ownFrames, prettyLine } from '../../src/cli/pretty-line.js';

const SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src') + path.sep;

// A failure as the consumer logs it: the command's frames on top of taskmill's and xstate's.
const STACK = [
  'Error: flaky refuses 70',
  '    at RunningJob.<anonymous> (/app/commands.ts:17:26)',
  '    at helper (file:///app/lib/util.mjs:3:9)',
  `    at run (${SRC}actors/run-command.ts:199:25)`,
  `    at <anonymous> (${pathToFileURL(SRC).href}actors/run-command.js:215:33)`,
  '    at /app/node_modules/xstate/dist/xstate-actors.cjs.js:314:52',
  '    at Set.forEach (<anonymous>)',
  '    at Actor._process (/app/node_modules/xstate/dist/raise-9de11213.cjs.js:928:30)',
  '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
].join('\n');

describe('ownFrames', () => {
  it("keeps the command's frames, by path or URL, and drops taskmill's, node_modules' and Node's", () => {
    expect(ownFrames(STACK, SRC)).toEqual(['at RunningJob.<anonymous> (/app/commands.ts:17:26)', 'at helper (file:///app/lib/util.mjs:3:9)']);
  });

  it('shows at most five', () => {
    const deep = ['Error: x', ...Array.from({ length: 9 }, (_, i) => `    at f${i} (/app/deep.ts:${i}:1)`)].join('\n');
    expect(ownFrames(deep, SRC)).toHaveLength(5);
  });
});

describe('prettyLine', () => {
  it('puts the message and the fields on one line, quoting what has spaces', () => {
    const line = prettyLine({
      level: 30,
      time: 1,
      pid: 9,
      hostname: 'h',
      name: 'taskmill',
      msg: 'job finished',
      worker: 'worker-1',
      attempt: 1,
      note: 'two words',
      ids: ['a', 'b'],
    });
    expect(line).toBe('job finished worker=worker-1 attempt=1 note="two words" ids=["a","b"]');
  });

  it("says an error's type and message and lists the command's frames under it", () => {
    const line = prettyLine({ msg: 'command failed; worker replaced', command: 'flaky', err: { type: 'Error', message: 'flaky refuses 70', stack: STACK } });
    const lines = line.split('\n');
    expect(lines[0]).toBe('command failed; worker replaced command=flaky err="Error: flaky refuses 70"');
    expect(lines.slice(1)).toEqual(['    at RunningJob.<anonymous> (/app/commands.ts:17:26)', '    at helper (file:///app/lib/util.mjs:3:9)']);
  });
});

describe('the pretty stream', () => {
  it('writes one line per event, with the failure its own frames only', () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        out += chunk.toString();
        done();
      },
    });
    const logger = pino({ name: 'taskmill' }, pinoPretty({ sync: true, colorize: false, destination: sink, ...PRETTY_ONE_LINE }));
    logger.info({ worker: 'worker-1', command: 'ok', attempt: 1, ms: 3 }, 'job finished');
    const error = new Error('boom');
    error.stack = STACK;
    logger.error({ worker: 'worker-1', command: 'flaky', err: error }, 'command failed; worker replaced');
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/INFO: job finished worker=worker-1 command=ok attempt=1 ms=3$/);
    expect(lines[1]).toMatch(/ERROR: command failed; worker replaced worker=worker-1 command=flaky err="Error: boom"$/);
    expect(lines.slice(2)).toEqual(['    at RunningJob.<anonymous> (/app/commands.ts:17:26)', '    at helper (file:///app/lib/util.mjs:3:9)']);
    expect(out).not.toContain('xstate');
  });
});
