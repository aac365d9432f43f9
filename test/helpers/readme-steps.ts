// The README's documented steps, as a test reads them: the fenced code blocks of one section, in
// order, with their language. A test runs them as written (replacing only what the prose tells
// the reader to replace), so a step that breaks on a fresh box breaks the test first.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const readmePath = fileURLToPath(new URL('../../README.md', import.meta.url));

export interface CodeBlock {
  language: string;
  text: string;
}

/** The code blocks of the README section headed `## <title>` (up to the next `## ` heading). */
export async function readmeSectionBlocks(title: string): Promise<CodeBlock[]> {
  const readme = await readFile(readmePath, 'utf8');
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`the README has no section "## ${title}"`);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```(\S*)\n([\s\S]*?)^```$/gm)].map((match) => ({ language: match[1]!, text: match[2]! }));
}
