// What a careless admin, a crash or an attacker with the agent's rights may leave where the agent
// keeps a file beside a JSON note of what it is (a cut-short download, the last archive kept for a
// delta): a FIFO for the note (a read would hang), the file a link to a file outside, a note of
// another remote, an absurd size. Each must be removed, never followed, never trusted.
import { execFileSync } from 'node:child_process';
import { readFile, rm, symlink, writeFile } from 'node:fs/promises';

export type Plant = (note: string, file: string) => Promise<void>;

async function editNote(note: string, change: (fields: Record<string, unknown>) => void): Promise<void> {
  const fields = JSON.parse(await readFile(note, 'utf8')) as Record<string, unknown>;
  change(fields);
  await writeFile(note, JSON.stringify(fields));
}

/** The four kinds of junk, `sizeField` naming the note's field for the file's size. */
export function kindsOfJunk(outside: string, sizeField: string): Array<[string, Plant]> {
  return [
    ['a FIFO for the note', async (note) => {
      await rm(note);
      execFileSync('mkfifo', [note]);
    }],
    ['the file a link to a file outside', async (_note, file) => {
      await rm(file);
      await symlink(outside, file);
    }],
    ['a note of another remote', (note) => editNote(note, (fields) => (fields.identity = '0'.repeat(64)))],
    [`a ${sizeField} of 2^60 bytes`, (note) => editNote(note, (fields) => (fields[sizeField] = 2 ** 60))],
  ];
}
