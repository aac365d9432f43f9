// A group: the remotes of several apps deployed as one release, each staged into a subdirectory
// named after its app, so one rename switches them all and one revert takes them all back.
// The group's revision is the sha256 of its members' revisions; what each member's fetcher
// remembers is kept, by member, in the group's remote state, so an idle check asks each remote
// its own cheap question. When any member changed, the unchanged ones are fetched again from
// their remotes (a git mirror is at hand; a zip is downloaded again) rather than copied from the
// live tree, which hooks may have written into.
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Remote } from '../core/remote.js';
import type { CheckContext, CheckResult, DeployedRevision, Fetcher, PendingRevision, RemoteState, StagedFiles } from '../core/remote-contract.js';
import type { Settings } from '../core/settings.js';
import { fetchError } from '../base/errors.js';
import { shortRevision } from '../core/short-revision.js';

interface Member {
  name: string;
  settings: Settings;
}

interface MemberMemory {
  revision: string;
  remoteState: RemoteState;
}

/** The group's remote state holds its members' as JSON under this one key (a RemoteState is flat). */
const membersKey = 'group-members';

function remembered(deployed: DeployedRevision | undefined): Record<string, MemberMemory> {
  const text = deployed?.remoteState[membersKey];
  if (!text) return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, MemberMemory>) : {};
  } catch {
    return {}; // a state written by hand: every member is asked as on a first deploy
  }
}

const memberDeployed = (memory: MemberMemory | undefined, sameRemote: boolean): DeployedRevision | undefined => (memory ? { revision: memory.revision, remoteState: memory.remoteState, sameRemote } : undefined);

export function groupRevision(members: Array<{ name: string; revision: string }>): string {
  return createHash('sha256').update(members.map((member) => `${member.name}\t${member.revision}\n`).join('')).digest('hex');
}

export function groupFetcher(members: Member[], createFetcher: (remote: Remote, settings: Settings) => Promise<Fetcher>): Fetcher {
  return {
    async check(context: CheckContext): Promise<CheckResult> {
      if (members.length === 0) throw fetchError('the group has no member apps');
      const deployed = remembered(context.deployed);
      const live = remembered(context.live);
      const fetchers = await Promise.all(members.map((member) => createFetcher(member.settings.remote!, member.settings)));
      const ask = (index: number, against: DeployedRevision | undefined) => {
        const member = members[index]!;
        return fetchers[index]!.check({ ...context, settings: member.settings, deployed: against, live: memberDeployed(live[member.name], context.live?.sameRemote ?? false) });
      };
      // Asked one after another: a failure of one leaves the others' downloads unmade.
      const answers: CheckResult[] = [];
      try {
        for (const [index, member] of members.entries()) answers.push(await ask(index, memberDeployed(deployed[member.name], context.deployed?.sameRemote ?? false)));
        if (answers.every((answer) => !answer.changed)) {
          const fresh = Object.fromEntries(members.map((member, index) => [member.name, { revision: deployed[member.name]!.revision, remoteState: answers[index]!.remoteState ?? deployed[member.name]!.remoteState }]));
          return { changed: false, remoteState: { [membersKey]: JSON.stringify(fresh) } };
        }
        // Something changed: every member is staged, the unchanged ones fetched again in full.
        for (const [index] of members.entries()) {
          if (!answers[index]!.changed) answers[index] = await ask(index, undefined);
        }
      } catch (error) {
        await Promise.all(answers.map((answer) => (answer.changed ? answer.dispose() : undefined)));
        throw error;
      }
      // Asked against nothing, a remote always answers with what it has; one that did not broke the contract.
      const unanswered = members.find((_, index) => !answers[index]!.changed);
      if (unanswered) {
        await Promise.all(answers.map((answer) => (answer.changed ? answer.dispose() : undefined)));
        throw fetchError(`the group's app ${unanswered.name} gave no content to stage`);
      }
      const pending = answers as PendingRevision[];
      const memory = Object.fromEntries(members.map((member, index) => [member.name, { revision: pending[index]!.revision, remoteState: pending[index]!.remoteState }]));
      const revision = groupRevision(members.map((member, index) => ({ name: member.name, revision: pending[index]!.revision })));
      const description = members
        .map((member, index) => {
          const before = deployed[member.name]?.revision;
          return before === pending[index]!.revision ? `${member.name} unchanged` : `${member.name} ${before ? `${shortRevision(before)} -> ` : ''}${pending[index]!.description}`;
        })
        .join('; ');
      return {
        changed: true,
        revision,
        description: `group of ${members.length}: ${description}`,
        remoteState: { [membersKey]: JSON.stringify(memory) },
        async stage(directory: string): Promise<StagedFiles> {
          const fileHashes = new Map<string, string>();
          for (const [index, member] of members.entries()) {
            const subdirectory = join(directory, member.name);
            await mkdir(subdirectory);
            const staged = await pending[index]!.stage(subdirectory);
            for (const [path, hash] of staged?.fileHashes ?? []) fileHashes.set(`${member.name}/${path}`, hash);
          }
          return { fileHashes };
        },
        async dispose(): Promise<void> {
          await Promise.all(pending.map((member) => member.dispose()));
        },
      };
    },
  };
}
