/**
 * Redis AUTH and ACL users through the embedded tier (issue 7, security), against a
 * 3-master cluster of the file's own with `requirepass` and ACL users on every node
 * (test/fixtures/redis/auth-cluster.ts). The right credentials work; a wrong password, no
 * password or too few permissions give typed errors and no crash; no error message
 * holds a password.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { createTier, type Tier, type TierOptions } from '../../src/index.ts';
import {
  aclDenials,
  PASSWORD,
  secretsIn,
  USER_PASSWORD,
  useAuthCluster,
  WRONG_PASSWORD,
} from '../fixtures/redis/auth-cluster.ts';
import { timed } from '../fixtures/timing.ts';

const auth = useAuthCluster();

/** A tier on the file's cluster, closed when the test finishes (unflushed counters or not). */
async function tier(options: Partial<TierOptions>): Promise<Tier> {
  const t = await createTier({
    redis: auth.cluster.seeds,
    l1Bytes: '8mb',
    codec: 'utf8',
    negativeTtl: 0,
    // Generous for the calls that should succeed on a loaded machine; failures set their own.
    requestTimeout: '5s',
    l2Timeout: '1s',
    ...options,
  });
  onTestFinished(() => t.close().catch(() => {}));
  return t;
}

/**
 * The refresher gives up waiting for Redis connectTimeout after it starts, which may be
 * later than createTier's own wait on a loaded machine: poll rather than assume.
 */
async function untilDown(t: Tier): Promise<void> {
  await vi.waitFor(() => expect(t.stats().refresher.state).toBe('l2Down'), { timeout: 15_000 });
}

/** A typed L2 failure (or the caller's own deadline running out while Redis fails). */
const L2_FAILURE = /^HS_ERR_(L2_TIMEOUT|L2_UNAVAILABLE|TIMEOUT)$/;

describe('tier: password', () => {
  it('with the right password, reads, writes and counters work', async () => {
    const t = await tier({ password: PASSWORD });
    await t.set('auth:a', 'one');
    expect(await t.get('auth:a')).toBe('one');
    await t.delete('auth:a');
    expect(await t.get('auth:a')).toBeUndefined();
    await t.counter('auth:likes').incr(3, { sync: true });
    expect(await t.counter('auth:likes').read()).toBe(3);
  });

  it('with no password or a wrong one: typed errors in time, the refresher lives on, no secret in any message', async () => {
    for (const password of [undefined, WRONG_PASSWORD]) {
      const t = await tier({ password, requestTimeout: '1s', l2Timeout: '250ms' });
      await untilDown(t);
      for (const call of [
        () => t.get('auth:b'),
        () => t.set('auth:b', 'x'),
        () => t.delete('auth:b'),
        () => t.counter('auth:c').read(),
      ]) {
        const outcome = await timed(call());
        expect(outcome.code).toMatch(L2_FAILURE);
        expect(outcome.ms).toBeLessThan(5000);
        expect(secretsIn(outcome.message ?? '')).toEqual([]);
      }
      expect(t.stats().refresher.generation).toBe(1); // never respawned: nothing crashed
      await t.close();
    }
  });

  it('names the cause when Redis refuses the credentials', async () => {
    const t = await tier({ password: WRONG_PASSWORD, requestTimeout: '1s', l2Timeout: '250ms' });
    const outcome = await timed(t.get('auth:cause'));
    expect(outcome.code).toMatch(/^HS_ERR_L2_/);
    expect(secretsIn(outcome.message ?? '')).toEqual([]);
    // Regression: this once read only "connecting to Redis took longer than 250 ms";
    // the L2 client now keeps ioredis' last connection error and names it.
    expect(outcome.message).toMatch(/WRONGPASS|NOAUTH/);
  });
});

describe('tier: ACL users', () => {
  it('the minimal ACL user does everything, and Redis denies it nothing', async () => {
    for (const admin of auth.admins) await admin.call('ACL', 'LOG', 'RESET');
    const t = await tier({ username: 'hotshield', password: USER_PASSWORD });
    for (let i = 0; i < 20; i++) await t.set(`acl:${i}`, `v${i}`); // keys on every master
    for (let i = 0; i < 20; i++) expect(await t.get(`acl:${i}`)).toBe(`v${i}`);
    expect(await t.get('acl:absent')).toBeUndefined();
    await t.set('acl:ttl', 'x', { ttl: '10m' });
    await t.delete('acl:0');
    expect(await t.get('acl:0')).toBeUndefined();
    const likes = t.counter('acl:likes');
    await likes.incr(2, { sync: true });
    likes.incr(5);
    await likes.incr(1, { sync: true });
    expect(await likes.read()).toBe(8);
    await t.close();
    expect(await aclDenials(auth.admins, 'hotshield')).toEqual([]);
  });

  it('keys narrowed to a prefix (`~app:* ~{app:*`): values and counters under it work, others get NOPERM', async () => {
    for (const admin of auth.admins) await admin.call('ACL', 'LOG', 'RESET');
    const t = await tier({ username: 'prefixed', password: USER_PASSWORD });
    await t.set('app:a', 'in');
    expect(await t.get('app:a')).toBe('in');
    await t.counter('app:likes').incr(4, { sync: true });
    expect(await t.counter('app:likes').read()).toBe(4);
    expect(await aclDenials(auth.admins, 'prefixed')).toEqual([]);
    const outside = await timed(t.get('other:a'));
    expect(outside.code).toBe('HS_ERR_L2_UNAVAILABLE');
    expect(outside.message).toMatch(/NOPERM/);
  });

  it('without write permissions: reads work; writes and counter flushes get typed errors', async () => {
    await auth.admins[0].set('acl:ro', 'readable');
    const t = await tier({ username: 'no-writes', password: USER_PASSWORD, requestTimeout: '1s' });
    expect(await t.get('acl:ro')).toBe('readable');
    const write = await timed(t.set('acl:ro', 'changed'));
    expect(write.code).toBe('HS_ERR_L2_UNAVAILABLE');
    expect(write.message).toMatch(/NOPERM/);
    expect((await timed(t.delete('acl:ro'))).code).toBe('HS_ERR_L2_UNAVAILABLE');
    expect(await t.get('acl:ro')).toBe('readable');
    // The flush script's INCRBY is refused: the increment stays unconfirmed (kept, re-sent).
    const incr = await timed(t.counter('acl:ro-likes').incr(1, { sync: true }));
    expect(incr.code).toBe('HS_ERR_UNCONFIRMED');
    expect(t.stats().tier.counterFlushErrors).toBeGreaterThan(0);
    expect(t.stats().refresher.state).toBe('l2Ready');
  });

  it('without CLIENT TRACKING or SUBSCRIBE: coherence turns itself off, said once; values keep their soft TTL', async () => {
    const t = await tier({ username: 'no-tracking', password: USER_PASSWORD });
    for (let i = 0; i < 100 && t.stats().tier.trackingRefused === 0; i++) await sleep(20);
    expect(t.stats().tier.trackingRefused).toBe(1);
    expect(t.stats().refresher.coherence).toEqual({ tracked: 0, masters: 0 });
    await t.set('acl:nt', 'v');
    expect(await t.get('acl:nt')).toBe('v');
    // Trusted for the soft TTL as without coherence, not the 1 s of an untracked value.
    const entry = t.peek('acl:nt');
    expect(entry).toMatchObject({ cache: 'hit' });
    await sleep(1300);
    expect(t.peek('acl:nt')).toMatchObject({ cache: 'hit' });
    expect(t.stats().tier.trackingRefused).toBe(1);
  });

  it('without EVAL/EVALSHA: values work; counters get typed errors', async () => {
    const t = await tier({ username: 'no-scripts', password: USER_PASSWORD, requestTimeout: '1s' });
    await t.set('acl:ns', 'v');
    expect(await t.get('acl:ns')).toBe('v');
    const read = await timed(t.counter('acl:ns-likes').read());
    expect(read.code).toBe('HS_ERR_L2_UNAVAILABLE');
    expect(read.message).toMatch(/NOPERM/);
    const incr = await timed(t.counter('acl:ns-likes').incr(1, { sync: true }));
    expect(incr.code).toBe('HS_ERR_UNCONFIRMED');
  });

  it('without CLUSTER SLOTS the slot map cannot be read: typed errors, no crash', async () => {
    const t = await tier({
      username: 'no-cluster',
      password: USER_PASSWORD,
      requestTimeout: '1s',
      l2Timeout: '250ms',
    });
    await untilDown(t);
    expect((await timed(t.get('acl:nc'))).code).toMatch(L2_FAILURE);
    expect((await timed(t.set('acl:nc', 'v'))).code).toMatch(L2_FAILURE);
    expect(t.stats().refresher.generation).toBe(1);
  });

  it('a wrong password for an ACL user is refused like any other', async () => {
    const t = await tier({
      username: 'hotshield',
      password: WRONG_PASSWORD,
      requestTimeout: '1s',
      l2Timeout: '250ms',
    });
    const outcome = await timed(t.get('acl:wrong'));
    expect(outcome.code).toMatch(L2_FAILURE);
    expect(secretsIn(outcome.message ?? '')).toEqual([]);
  });
});
