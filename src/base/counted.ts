// "1 file", "2 files": a count and its noun, for log lines an operator reads.
export function counted(count: number, singular: string, plural = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : plural}`;
}
