import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, HotshieldError, TierErrorCodes } from '../../../src/index.ts';

describe('error catalogue', () => {
  it('every code is its own name, and the tier and L1 codes are all in ErrorCodes', () => {
    for (const [k, v] of Object.entries(ErrorCodes)) expect(v).toBe(k);
    for (const k of Object.keys(TierErrorCodes)) expect(ErrorCodes).toHaveProperty(k);
  });

  it('every tier error code is documented in the README', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const code of Object.keys(TierErrorCodes)) expect(readme).toContain(`\`${code}\``);
  });

  it('HotshieldError keeps its code and is recognised across module copies', () => {
    const e = new HotshieldError('HS_ERR_TIMEOUT', 'slow');
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('HS_ERR_TIMEOUT');
    expect({ ...e, [Symbol.for('hotshield.error.HotshieldError')]: true }).toBeInstanceOf(
      HotshieldError,
    );
    expect(new Error('plain')).not.toBeInstanceOf(HotshieldError);
  });
});
