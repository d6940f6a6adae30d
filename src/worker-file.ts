/**
 * Where the thread entry points are: `workers/<name>.ts` next to `src/` when run from the
 * sources, `workers/<name>.js` next to `dist/src/` in the published build (the same
 * extension as this module, so both work without a build step here).
 */

export type WorkerName = 'refresher' | 'http-thread';

export function workerFile(name: WorkerName): URL {
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`../workers/${name}${extension}`, import.meta.url);
}
