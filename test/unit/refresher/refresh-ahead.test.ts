/**
 * When refresh-ahead refreshes a hot key (src/refresher/refresh-ahead.ts): inside the
 * last `lead` before the soft expiry, never after its last quarter, spread by the random
 * draw so that processes do not refresh together.
 */
import { describe, expect, it } from 'vitest';
import { leadMs, refreshAt } from '../../../src/refresher/refresh-ahead.ts';

describe('refresh-ahead timing', () => {
  it('lead is 500 ms, or a quarter of a shorter soft TTL', () => {
    expect(leadMs(3000)).toBe(500);
    expect(leadMs(60_000)).toBe(500);
    expect(leadMs(1200)).toBe(300);
  });

  it('refreshes within [expiry − lead, expiry − lead/4], spread by the draw', () => {
    const expiry = 10_000;
    expect(refreshAt(expiry, 3000, 0)).toBe(9500);
    expect(refreshAt(expiry, 3000, 0.999999)).toBeCloseTo(9875, 0);
    expect(refreshAt(expiry, 1200, 0.5)).toBe(9812.5);
    // A thousand processes' draws: spread over the whole span, none at the expiry.
    const times = Array.from({ length: 1000 }, (_, i) => refreshAt(expiry, 3000, i / 1000));
    expect(Math.min(...times)).toBe(9500);
    expect(Math.max(...times)).toBeLessThan(9875);
    expect(new Set(times.map((t) => Math.floor(t / 25))).size).toBe(15);
  });
});
