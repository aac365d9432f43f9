// A reader of the live tree, looping until told to stop: each pass reads every file and checks
// they all carry the same version marker. A pass that fails to read a file, or sees two
// versions at once, is a failed or mixed read. Prints one JSON line when it receives SIGTERM.
// Like an application should (and as with Capistrano's `current`), a pass resolves the live
// link once and reads through what it resolved: a path re-resolved per file can straddle a swap.
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

const live = process.argv[2] as string;
let passes = 0;
let failed = 0;
let mixed = 0;
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

function pass(): void {
  let names: string[];
  let tree: string;
  try {
    tree = realpathSync(live);
    names = readdirSync(tree).sort();
  } catch {
    failed++;
    return;
  }
  const versions = new Set<string>();
  for (const name of names) {
    try {
      versions.add(readFileSync(join(tree, name), 'utf8').split(' ')[0] as string);
    } catch {
      failed++;
      return;
    }
  }
  if (versions.size !== 1 || names.length === 0) mixed++;
}

function loop(): void {
  for (let index = 0; index < 20 && !stopping; index++) {
    pass();
    passes++;
  }
  if (stopping) {
    process.stdout.write(JSON.stringify({ passes, failed, mixed }) + '\n');
    process.exit(0);
  }
  setImmediate(loop);
}
process.stdout.write('ready\n');
loop();
