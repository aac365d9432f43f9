// A module loader hook that writes every module URL Node loads to the file named by
// RECORD_LOADS_TO, one per line: which chunks of the bundle a run needed.
import { appendFileSync } from 'node:fs';

export async function load(url, context, nextLoad) {
  if (process.env.RECORD_LOADS_TO) appendFileSync(process.env.RECORD_LOADS_TO, `${url}\n`);
  return nextLoad(url, context);
}
