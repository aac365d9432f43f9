// The agent's version, read once from package.json, for --version and the User-Agent header.
// The bundle (dist/cli.js and its chunks) sits one level below package.json; this source file,
// run by tsx in tests, two.
import { existsSync, readFileSync } from 'node:fs';

const packageFile = [new URL('../package.json', import.meta.url), new URL('../../package.json', import.meta.url)].find((url) => existsSync(url))!;
const packageJson = JSON.parse(readFileSync(packageFile, 'utf8')) as { version: string };
export const agentVersion: string = packageJson.version;
