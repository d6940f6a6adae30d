import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { L1Error, L1ErrorCodes } from '../../../src/l1/index.ts';

describe('L1 error catalogue', () => {
  it('every code is its own key, and the L1 section of the README lists each', () => {
    const codes = Object.keys(L1ErrorCodes);
    expect(codes.length).toBe(12);
    for (const [k, v] of Object.entries(L1ErrorCodes)) expect(v).toBe(k);
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const l1Section = readme.slice(readme.indexOf('## Lower level: the L1 table'));
    for (const code of codes) expect(l1Section, `README lists ${code}`).toContain(`\`${code}\``);
  });

  it('a structured clone keeps the message but not the code or the class', () => {
    const e = new L1Error('HS_ERR_KEY_TOO_LONG', 'too long');
    const cloned = structuredClone(e) as Error & { code?: string };
    expect(cloned.message).toBe('too long');
    expect(cloned.code).toBeUndefined();
    expect(cloned).not.toBeInstanceOf(L1Error);
  });

  it('instanceof works across two copies of the module, by brand', async () => {
    const copy = (await import(
      /* @vite-ignore */ `${new URL('../../../src/l1/errors.ts', import.meta.url).href}?copy`
    )) as typeof import('../../../src/l1/errors.ts');
    expect(copy.L1Error).not.toBe(L1Error);
    expect(new copy.L1Error('HS_ERR_KEY_EMPTY', 'empty')).toBeInstanceOf(L1Error);
    expect(new L1Error('HS_ERR_KEY_EMPTY', 'empty')).toBeInstanceOf(copy.L1Error);
    expect(new L1Error('HS_ERR_KEY_EMPTY', 'empty')).toBeInstanceOf(Error);
    expect(new Error('x')).not.toBeInstanceOf(L1Error);
  });
});
