// Builds dist/: the program as one ESM entry (dist/cli.js) and chunks that load only when used,
// with esbuild. Node 20 has no compile cache for ES modules, so resolving and compiling ~60 of
// our files plus undici's, yargs' and the AWS SDK's hundreds was most of an idle check's start;
// dynamic imports stay dynamic (code splitting), so `--help` never loads the S3 client.
// The type check is tsc's job (`tsc -p tsconfig.json`, noEmit); this only emits.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * yargs' ES module build lays its help out with cliui's ES module build, whose stand-in for
 * wrap-ansi breaks words in the middle at the column; its CommonJS build wraps between words with
 * wrap-ansi, as `--help` did before. So cliui is taken from its CommonJS build.
 */
const cliuiCommonJs = {
  name: 'cliui-commonjs',
  setup(plugin) {
    plugin.onResolve({ filter: /^cliui$/ }, (args) =>
      args.pluginData === 'cliui-commonjs' ? undefined : plugin.resolve(args.path, { kind: 'require-call', resolveDir: args.resolveDir, pluginData: 'cliui-commonjs' }));
  },
};
const outdir = join(root, 'dist');
await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: [{ in: 'src/entry.ts', out: 'cli' }],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // The CommonJS dependencies (yauzl, ioredis, …) call require() for Node's own modules; an ES
  // module has no require, so each chunk gets one.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  plugins: [cliuiCommonJs],
  // A package without an exports map (the AWS SDK's) is taken from its ES module build, which
  // esbuild tree-shakes; from "main" an S3 check loaded the SDK's whole CommonJS build (1 MB, every
  // command's schemas). The SDK's own advice for esbuild.
  mainFields: ['module', 'main'],
  logLevel: 'warning',
});
