/**
 * `npm run cluster`: a throwaway local Redis Cluster to poke at (or to point a gateway
 * or a tier at with its seeds). Runs until SIGINT/SIGTERM, then stops the cluster and
 * exits 0.
 */
import { startRedisCluster } from './redis-cluster.ts';

const cluster = await startRedisCluster({ masters: 3 });
const [first] = cluster.nodes;
console.log('hotshield: started a throwaway local Redis Cluster (3 masters); deleted on exit.');
console.log(`seeds: ${cluster.seeds}`);
console.log(`try:   redis-cli -c -p ${first.port} set hello world`);
console.log(`data:  ${cluster.dir}`);
console.log('Ctrl-C to stop.');

// Holds the loop open (the launcher unrefs its children) and watches the parent: `npm start`
// signals only its `sh -c` wrapper, whose death would otherwise leave this running for good.
const parentPid = process.ppid;
const keepAlive = setInterval(() => {
  if (process.ppid !== parentPid) void shutdown('parent exited');
}, 1000);

async function shutdown(reason: string): Promise<void> {
  console.log(`${reason}: stopping the cluster`);
  clearInterval(keepAlive);
  await cluster.stop();
  process.exit(0);
}
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
