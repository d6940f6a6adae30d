/**
 * Forming a local Redis Cluster from started nodes, by hand (SET-CONFIG-EPOCH,
 * ADDSLOTSRANGE, MEET, REPLICATE) instead of `redis-cli --cluster create`, which waits
 * in 1 s steps and needs one more binary; and waiting until it is ready: every node
 * reports cluster_state:ok, every node sees exactly the planned topology, and every
 * replica's link to its master is up.
 */
import type { Redis } from 'ioredis';
import { HotshieldError } from '../errors.ts';
import { adminClient, LOOPBACK, pollUntil, type RedisNode, tailOf } from './redis-node.ts';

export const SLOT_COUNT = 16384;
export const READY_TIMEOUT_MS = 20_000;

/** What the formation needs of the launcher's options. */
export interface ClusterPlan {
  readonly masters: number;
  readonly replicasPerMaster: number;
  readonly password: string | undefined;
}

/** Forms the cluster; returns the expected topology in `describeTopology` form. */
export async function formCluster(
  nodes: readonly RedisNode[],
  config: ClusterPlan,
  deadline: number,
): Promise<string> {
  return withAdminClients(nodes, config.password, async (clients) => {
    const ids = await Promise.all(clients.map((client) => client.cluster('MYID')));
    // Distinct epochs up front spare the cluster its slow epoch-collision resolution.
    await Promise.all(
      clients.map((client, index) => client.cluster('SET-CONFIG-EPOCH', index + 1)),
    );
    const expected: TopologyEntry[] = [];
    await Promise.all(
      clients.slice(0, config.masters).map((client, index) => {
        const first = Math.floor((index * SLOT_COUNT) / config.masters);
        const last = Math.floor(((index + 1) * SLOT_COUNT) / config.masters) - 1;
        const slots = first === last ? `${first}` : `${first}-${last}`;
        expected.push({ id: ids[index], role: 'master', masterId: '-', slots });
        return client.cluster('ADDSLOTSRANGE', first, last);
      }),
    );
    await Promise.all(
      nodes.slice(1).map((node) => clients[0].cluster('MEET', LOOPBACK, node.port)),
    );

    // REPLICATE needs the replica to know its master by ID, which takes a gossip round.
    const knowsEveryone = await pollUntil(deadline, async () => {
      const views = await Promise.all(clients.map(clusterNodesOf));
      for (const [index, text] of views.entries()) {
        const view = parseClusterNodes(text);
        if (view.problem !== undefined) return `${nodes[index].address}: ${view.problem}`;
        if (view.entries.length !== nodes.length) {
          return `${nodes[index].address} knows ${view.entries.length}/${nodes.length} nodes`;
        }
      }
      return undefined;
    });
    if (knowsEveryone !== undefined) throw await notReady(nodes, knowsEveryone);

    await Promise.all(
      clients.slice(config.masters).map((client, index) => {
        const masterId = ids[Math.floor(index / config.replicasPerMaster)];
        expected.push({ id: ids[config.masters + index], role: 'replica', masterId, slots: '' });
        return client.cluster('REPLICATE', masterId);
      }),
    );
    return describeTopology(expected);
  });
}

export async function waitForTopology(
  nodes: readonly RedisNode[],
  expected: string,
  password: string | undefined,
  deadline: number,
): Promise<void> {
  await withAdminClients(nodes, password, async (clients) => {
    const problem = await pollUntil(deadline, async () => {
      const problems = await Promise.all(
        nodes.map((node, index) => readinessProblem(node, clients[index], expected)),
      );
      return problems.find((found) => found !== undefined);
    });
    if (problem !== undefined) throw await notReady(nodes, problem);
  });
}

async function readinessProblem(
  node: RedisNode,
  client: Redis,
  expected: string,
): Promise<string | undefined> {
  const info = await client.cluster('INFO');
  const state = /^cluster_state:(\w+)/m.exec(info)?.[1];
  if (state !== 'ok') return `${node.address} reports cluster_state:${state}`;
  const view = parseClusterNodes(await clusterNodesOf(client));
  if (view.problem !== undefined) return `${node.address}: ${view.problem}`;
  if (describeTopology(view.entries) !== expected) {
    return `${node.address} does not agree (yet) on the planned topology`;
  }
  if (node.role === 'replica') {
    const replication = await client.info('replication');
    if (!/^master_link_status:up/m.test(replication)) {
      return `${node.address}: replication link to its master is not up`;
    }
  }
  return undefined;
}

interface TopologyEntry {
  readonly id: string;
  readonly role: string;
  readonly masterId: string;
  readonly slots: string;
}

// Flags meaning a node is not (yet) a healthy, fully known member.
const UNSETTLED_FLAGS = new Set(['fail', 'fail?', 'handshake', 'noaddr']);

/** Parses CLUSTER NODES (`<id> <addr> <flags> <master> <ping> <pong> <epoch> <link> <slot>…`). */
function parseClusterNodes(text: string): { entries: TopologyEntry[]; problem?: string } {
  const entries: TopologyEntry[] = [];
  for (const line of text.trim().split('\n')) {
    const [id, address, flagList, masterId, , , , linkState, ...slots] = line.trim().split(' ');
    const flags = flagList.split(',');
    const unsettled = flags.find((flag) => UNSETTLED_FLAGS.has(flag));
    if (unsettled !== undefined) return { entries, problem: `${address} is flagged ${unsettled}` };
    if (linkState !== 'connected')
      return { entries, problem: `link to ${address} is ${linkState}` };
    const role = flags.includes('master')
      ? 'master'
      : flags.includes('slave')
        ? 'replica'
        : flagList;
    entries.push({ id, role, masterId, slots: slots.join(' ') });
  }
  return { entries };
}

function describeTopology(entries: readonly TopologyEntry[]): string {
  return entries
    .map((entry) => `${entry.id} ${entry.role} ${entry.masterId} ${entry.slots}`.trimEnd())
    .sort()
    .join('\n');
}

async function notReady(nodes: readonly RedisNode[], problem: string): Promise<HotshieldError> {
  const tails = await Promise.all(
    nodes.map(
      async (node) =>
        `--- ${node.address} (${node.role}) log tail ---\n${await tailOf(node.logPath)}`,
    ),
  );
  return new HotshieldError(
    'HS_ERR_CLUSTER_NOT_READY',
    `Redis Cluster not ready within ${READY_TIMEOUT_MS} ms: ${problem}\n${tails.join('\n')}`,
  );
}

// ---------------------------------------------------------------------------------------
// Helpers

async function withAdminClients<T>(
  nodes: readonly RedisNode[],
  password: string | undefined,
  use: (clients: Redis[]) => Promise<T>,
): Promise<T> {
  const clients = nodes.map((node) => adminClient(node.port, password));
  try {
    return await use(clients);
  } finally {
    for (const client of clients) client.disconnect();
  }
}

// ioredis types the CLUSTER NODES reply as unknown; it is one text blob, a line per node.
async function clusterNodesOf(client: Redis): Promise<string> {
  return String(await client.cluster('NODES'));
}
