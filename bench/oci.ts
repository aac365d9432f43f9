// An OCI artifact (issue 25): a Flux-style artifact (one tar+gzip layer of a 5,000-file tree with
// one 32 MiB file) in Debian's docker-registry on loopback. The first deploy, `repo-deploy -f`
// into an empty cache, beside `skopeo copy` of the artifact into an OCI layout plus `tar -xzf`
// of its layer, the two alternated; then the idle check's bytes from the registry, counted by a
// relay in front of it.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startCountingRelay } from '../test/helpers/counting-relay.js';
import { fluxLayerType, pushArtifact, startRegistry } from '../test/helpers/oci-registry.js';
import { makeTree } from './fixtures.js';
import { alternate, cleanupContext, measure, spreadOf, type Measurement } from './measure.js';
import { inBytes, inMiB, inSeconds, ratio, rows } from './report.js';

const run = promisify(execFile);

export interface OciBenchOptions {
  cli: string;
  work: string;
  repetitions: number;
  agentArgs: (root: string, remote: string, config?: string) => Promise<string[]>;
}

export async function measureOciArtifact({ cli, work, repetitions, agentArgs }: OciBenchOptions): Promise<void> {
  const { context, cleanup } = cleanupContext();
  try {
    const source = join(work, 'oci-tree');
    await makeTree(source, 5000, 32);
    const layerPath = join(work, 'oci-layer.tgz');
    await run('tar', ['-czf', layerPath, '-C', source, '.']);
    const layer = await readFile(layerPath);
    const layerHex = createHash('sha256').update(layer).digest('hex');
    const registry = await startRegistry(context);
    await pushArtifact(registry, 'bench/site', 'v1', [{ mediaType: fluxLayerType, data: layer }]);
    const relay = await startCountingRelay(context, Number(registry.host.split(':')[1]));
    const remote = `oci://127.0.0.1:${relay.port}/bench/site:v1`;

    const oursRoot = join(work, 'oci-ours');
    const args = await agentArgs(oursRoot, remote, 'oci-insecure = yes\n');
    const referenceRoot = join(work, 'oci-skopeo');
    const script = `skopeo copy --quiet --src-tls-verify=false docker://127.0.0.1:${relay.port}/bench/site:v1 oci:${join(referenceRoot, 'layout')}:v1 && mkdir -p ${join(referenceRoot, 'tree')} && tar -xzf ${join(referenceRoot, 'layout', 'blobs', 'sha256', layerHex)} -C ${join(referenceRoot, 'tree')}`;
    const fresh = async (root: string) => {
      await rm(root, { recursive: true, force: true });
      await mkdir(root, { recursive: true });
    };
    const firstDeploy = await alternate(
      repetitions,
      {
        ours: (): Promise<Measurement> => measure(process.execPath, [cli, ...args]),
        skopeo: (): Promise<Measurement> => measure('sh', ['-c', script]),
      },
      async (name) => {
        if (name === 'ours') {
          await fresh(join(oursRoot, 'cache'));
          await rm(join(oursRoot, 'www'), { recursive: true, force: true });
        } else await fresh(referenceRoot);
        await run('sync', []);
      },
    );
    rows.push({
      figure: `oci: first deploy of a Flux artifact (${(layer.length / 1048576).toFixed(0)} MiB layer, 5,001 files) from a registry on loopback`,
      ours: inSeconds(firstDeploy.ours.seconds),
      reference: `skopeo copy + tar -xzf: ${inSeconds(firstDeploy.skopeo.seconds)}`,
      goal: `none yet (now ${ratio(firstDeploy.ours.seconds.median, firstDeploy.skopeo.seconds.median)})`,
      met: undefined,
    });
    rows.push({ figure: 'oci: same, peak resident memory', ours: inMiB(firstDeploy.ours.peakMiB), reference: `skopeo copy + tar -xzf: ${inMiB(firstDeploy.skopeo.peakMiB)}`, goal: '', met: undefined });

    // Idle: the deploy above is live; each -f now asks the registry one HEAD.
    const idleBytes: number[] = [];
    for (let round = 0; round < repetitions; round++) {
      relay.reset();
      await measure(process.execPath, [cli, ...args]);
      idleBytes.push(relay.bytes);
    }
    const idle = spreadOf(idleBytes);
    rows.push({ figure: 'oci: idle check, bytes from the registry', ours: inBytes(idle), reference: `the layer: ${layer.length} B`, goal: '<= 2 KiB', met: idle.max <= 2048 });
  } finally {
    await cleanup();
  }
}
