// The agent's version, read once from package.json, for --version and the User-Agent header.
import { readFileSync } from 'node:fs';

const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
export const agentVersion: string = packageJson.version;
