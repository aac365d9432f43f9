// Who runs an operator's command (pause, fleet halt), for the record those commands leave.
import { hostname, userInfo } from 'node:os';

/** user@host of whoever runs a command (the user behind sudo, if any). */
export function operatorName(env: NodeJS.ProcessEnv): string {
  let user = env.SUDO_USER;
  try {
    user ??= userInfo().username;
  } catch {
    user ??= `uid ${process.getuid?.() ?? '?'}`;
  }
  return `${user}@${hostname()}`;
}
