import { BroadcastChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { clientChannel, controlChannel } from '../../../src/refresher/protocol.ts';
import { itemsOf } from '../../../src/refresher/turn-batch.ts';
import { RefresherLink } from '../../../src/tier/refresher-link.ts';

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('RefresherLink (one thread’s channels to the refresher)', () => {
  it('sends a turn’s asks as one message after the welcome; after close, a post is dropped, never thrown later', async () => {
    const tierId = `link-test-${process.pid}`;
    const events = { reply: () => {}, restarted: () => {}, closed: () => {} };
    // A stand-in for the refresher: answers the join with a welcome, records the asks.
    const bus = new BroadcastChannel(controlChannel(tierId));
    const joined = new Promise<string>((resolve) => {
      bus.onmessage = (e) => resolve(((e as MessageEvent).data as { from: string }).from);
    });
    const link = new RefresherLink(tierId, 1, 100, events);
    const clientId = await joined;
    const own = new BroadcastChannel(clientChannel(tierId, clientId));
    const received: unknown[][] = [];
    own.onmessage = (e) => received.push(itemsOf((e as MessageEvent).data));
    try {
      own.postMessage([{ t: 'welcome' }]);
      await new Promise((r) => setTimeout(r, 50));
      link.post({ t: 'fetch', key: 'a', load: false });
      link.post({ t: 'fetch', key: 'b', load: false });
      await new Promise((r) => setTimeout(r, 50));
      expect(received).toEqual([
        [
          { t: 'fetch', key: 'a', load: false, from: clientId },
          { t: 'fetch', key: 'b', load: false, from: clientId },
        ],
      ]);
      // What was posted in the turn of close() still goes; what comes after is dropped.
      link.post({ t: 'release', key: 'c' });
      link.close();
      expect(() => link.post({ t: 'fetch', key: 'd', load: false })).not.toThrow();
      await nextTurn();
      await new Promise((r) => setTimeout(r, 50));
      expect(received.flat().map((a) => (a as { key: string }).key)).toEqual(['a', 'b', 'c']);
    } finally {
      bus.close();
      own.close();
    }
  });
});
