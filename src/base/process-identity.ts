// A process id can be reused once its process is gone: before signalling a process a crashed run
// left behind, check that the pid still names the same process, by the start time the kernel
// records for it (field 22 of /proc/<pid>/stat, in clock ticks since boot).
import { readFile } from 'node:fs/promises';

/** The kernel's start time of a running process; undefined when there is none (or only its zombie). */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}
