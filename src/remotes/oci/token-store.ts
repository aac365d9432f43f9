// What each registry, repository and user was answered with, kept for the answer's lifetime:
// in memory for the daemon, and in the cache directory's `oci-tokens.json` for the runs of `-f`,
// each a new process (from cron), which otherwise asked the token service again at every run.
//
// Only Bearer tokens are written, each until 10 s before it expires (a pull token of minutes);
// Basic credentials never are: the file notes only that the registry wants Basic, so the first
// request of the next run carries them instead of drawing a 401. The file is the agent's own
// (0600, in its private cache directory), read as a small regular file (a FIFO or a huge file
// put in its place is ignored), and anything in it that is not what this module writes is
// ignored and replaced. Entries are named by a hash of registry, scope and user.
import { createHash } from 'node:crypto';
import { writeFileAtomically } from '../../base/atomic-file.js';
import { readSmallRegularFile } from '../../base/small-file.js';

export type StoredAuthorization = { bearer: string } | { basic: true };

interface Entry {
  bearer?: string;
  basic?: true;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** How long "this registry wants Basic" is remembered: it rarely changes, and a wrong guess costs one 401. */
const basicLifetimeMs = 24 * 3600 * 1000;
const mostEntries = 64;
const largestFile = 256 << 10;

/** Per token file (each app's cache directory has its own; '' for memory only), what it holds. */
const stores = new Map<string, Map<string, Entry>>();

const keyOf = (origin: string, scope: string, user: string) => createHash('sha256').update(`${origin}\n${scope}\n${user}`).digest('hex').slice(0, 32);

function fresh(entry: Entry, now: number): boolean {
  return entry.expiresAt > now && (typeof entry.bearer === 'string' || entry.basic === true);
}

/** The entries of `file` (read once per process), or of memory alone. */
function entriesOf(file: string | undefined, now: number): Map<string, Entry> {
  let memory = stores.get(file ?? '');
  if (memory) return memory;
  memory = new Map();
  stores.set(file ?? '', memory);
  if (file) load(file, memory, now);
  return memory;
}

function load(file: string, memory: Map<string, Entry>, now: number): void {
  let entries: Record<string, Entry>;
  try {
    entries = (JSON.parse(readSmallRegularFile(file, largestFile)) as { entries?: Record<string, Entry> }).entries ?? {};
  } catch {
    return; // absent, or not ours: replaced at the next token
  }
  for (const [key, entry] of Object.entries(entries)) {
    if (typeof entry === 'object' && entry !== null && typeof entry.expiresAt === 'number' && fresh(entry, now) && !memory.has(key)) memory.set(key, entry);
  }
}

export class TokenStore {
  private readonly key: string;

  /** `file` undefined: kept in memory only. */
  constructor(
    origin: string,
    scope: string,
    user: string,
    private readonly file: string | undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.key = keyOf(origin, scope, user);
  }

  get(): StoredAuthorization | undefined {
    const now = this.now();
    const memory = entriesOf(this.file, now);
    for (const [key, entry] of memory) if (!fresh(entry, now)) memory.delete(key);
    const entry = memory.get(this.key);
    if (!entry) return undefined;
    return entry.bearer !== undefined ? { bearer: entry.bearer } : { basic: true };
  }

  /** Keeps a Bearer token until 10 s before `lifetimeSeconds` ends (so it does not expire on its way), or notes that the registry wants Basic. */
  async set(authorization: StoredAuthorization, lifetimeSeconds?: number): Promise<void> {
    const now = this.now();
    const entry: Entry = 'bearer' in authorization ? { bearer: authorization.bearer, expiresAt: now + Math.max(0, (lifetimeSeconds ?? 60) - 10) * 1000 } : { basic: true, expiresAt: now + basicLifetimeMs };
    const memory = entriesOf(this.file, now);
    memory.set(this.key, entry);
    if (!this.file) return;
    const kept = [...memory].filter(([, each]) => fresh(each, now)).slice(-mostEntries);
    // A token that cannot be kept costs the next run one request; it never fails a check.
    await writeFileAtomically(this.file, JSON.stringify({ entries: Object.fromEntries(kept) }), { durable: false }).catch(() => undefined);
  }
}
