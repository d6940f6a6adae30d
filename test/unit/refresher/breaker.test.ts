import { describe, expect, it } from 'vitest';
import { Breaker } from '../../../src/refresher/breaker.ts';

describe('Breaker', () => {
  it('opens after `threshold` consecutive failures, lets one probe through after the cool-down', () => {
    const b = new Breaker(3, 1000);
    expect(b.failure('a', 0)).toBe(false);
    expect(b.failure('a', 1)).toBe(false);
    expect(b.allow('a', 2)).toBe(true);
    // The failure that opens the circuit says so (the client resets the connection then).
    expect(b.failure('a', 2)).toBe(true);
    // Open: refused until the cool-down ends, other nodes unaffected.
    expect(b.allow('a', 500)).toBe(false);
    expect(b.allow('b', 500)).toBe(true);
    expect(b.openNodes(500)).toEqual(['a']);
    // Half-open: exactly one probe.
    expect(b.allow('a', 1002)).toBe(true);
    expect(b.allow('a', 1003)).toBe(false);
    // The probe failed: open for another cool-down.
    expect(b.failure('a', 1010)).toBe(true);
    expect(b.allow('a', 1500)).toBe(false);
    expect(b.allow('a', 2011)).toBe(true);
    // The probe succeeded: closed.
    b.success('a');
    expect(b.allow('a', 2012)).toBe(true);
    expect(b.openNodes(2012)).toEqual([]);
    expect(b.counts).toEqual({ rejected: 3, opened: 2 });
  });

  it('a success resets the count of consecutive failures', () => {
    const b = new Breaker(2, 1000);
    b.failure('a', 0);
    b.success('a');
    b.failure('a', 1);
    expect(b.allow('a', 2)).toBe(true);
  });
});
