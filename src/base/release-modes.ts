// The permission bits a release's files and directories get from their source (an archive's
// stored modes, a git checkout). The owner's bits and the execute bits are kept (scripts stay
// executable, a 600 file stays private); group and world write never are: a zip entry stored as
// 0666 or 0777 would otherwise let any local user rewrite the live application (append to
// current/public/app.js, say), whatever the agent's umask. setuid, setgid and sticky bits are
// never kept either.
const groupAndWorldWrite = 0o022;

export function releaseMode(sourceMode: number): number {
  return sourceMode & 0o777 & ~groupAndWorldWrite;
}
