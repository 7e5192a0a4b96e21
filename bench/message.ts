/**
 * Micro-benchmark of the message codec: encode + decode round trips per second.
 * Run: npx tsx bench/message.ts
 */
import { decodeMessage, encodeMessage } from '../src/codec/message.js';

interface Case {
  name: string;
  args: unknown[];
}

const cases: Case[] = [
  { name: 'small job (number, short string)', args: [42, 'hello world'] },
  {
    name: 'Date + Map',
    args: [
      new Date(),
      new Map([
        ['a', 1],
        ['b', 2],
      ]),
    ],
  },
];

function measure(args: unknown[], durationMs: number): number {
  let ops = 0;
  let sink = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < durationMs) {
    for (let i = 0; i < 1000; i++) {
      const { data } = encodeMessage('churn', args);
      sink += decodeMessage(data).args.length;
    }
    ops += 1000;
    elapsed = performance.now() - start;
  }
  if (sink !== ops * args.length) throw new Error('round trip lost arguments');
  return (ops / elapsed) * 1000;
}

for (const { name, args } of cases) {
  measure(args, 300); // warm-up
  const opsPerSecond = measure(args, 1500);
  const { data } = encodeMessage('churn', args);
  console.log(`${name.padEnd(36)} ${Math.round(opsPerSecond).toLocaleString('en-US').padStart(10)} encode+decode/s  (${Buffer.byteLength(data)} bytes)`);
}
