// The daemon's idle cost: the same check the daemon runs, many times against an unchanged
// remote, with the memory after a collection at each sample point (the 10th check, the 1,000th...). Plain Node on
// the built dist/, as operators run it: under the tsx loader the heap grew by a Map in tsx's
// own module resolution at every dynamic import. Run with --expose-gc; prints one JSON line.
import { join } from 'node:path';
import { loadSettings } from '../dist/config.js';
import { silentLogger } from '../dist/log.js';
import { checkForUpdate } from '../dist/update.js';

const [remote, root, pointsText] = process.argv.slice(2);
const points = pointsText.split(',').map(Number);
const count = Math.max(...points);
const settings = await loadSettings({
  flags: { config: join(root, 'empty.cfg'), remote, local: join(root, 'www', 'current'), cache: join(root, 'cache'), preHooks: join(root, 'none'), postHooks: join(root, 'none') },
  env: {},
  cwd: root,
});
const context = { settings, log: silentLogger, env: {}, now: () => new Date(), signal: new AbortController().signal, lockWaitMs: 0 };
const sample = () => {
  globalThis.gc?.();
  const usage = process.memoryUsage();
  return { rssMb: usage.rss / 1048576, heapMb: usage.heapUsed / 1048576 };
};
const samples = {};
const started = performance.now();
for (let index = 1; index <= count; index++) {
  const outcome = await checkForUpdate(context);
  if (index > 1 && outcome.result !== 'unchanged') throw new Error(`check ${index}: ${outcome.result}`);
  if (points.includes(index)) samples[index] = sample();
}
process.stdout.write(JSON.stringify({ samples, millisecondsPerCheck: (performance.now() - started) / count }) + '\n');
