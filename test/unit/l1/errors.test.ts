import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { L1Error, L1ErrorCodes } from '../../../src/l1/index.ts';

describe('L1 error catalogue', () => {
  it('every code is its own key, and the list is what the README documents', () => {
    const codes = Object.keys(L1ErrorCodes);
    expect(codes.length).toBe(12);
    for (const [k, v] of Object.entries(L1ErrorCodes)) expect(v).toBe(k);
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const code of codes) expect(readme, `README lists ${code}`).toContain(code);
  });

  it('errors keep their code through structured clone, and instanceof works by brand', () => {
    const e = new L1Error('HS_ERR_KEY_TOO_LONG', 'too long');
    const cloned = structuredClone(e) as Error & { code?: string };
    expect(cloned.message).toBe('too long');
    expect(e).toBeInstanceOf(L1Error);
    expect(e).toBeInstanceOf(Error);
    expect(new Error('x')).not.toBeInstanceOf(L1Error);
  });
});
