/**
 * The error catalogue as users meet it: every code documented in the README's error
 * table with the HTTP status the gateway answers it with (or "—" where no request can
 * meet it), the class recognised across two copies of its module, and codes crossing
 * threads as fields (a structured clone keeps neither the code nor the class).
 */
import { readFileSync } from 'node:fs';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, HotshieldError } from '../../src/errors.ts';
import { HTTP_STATUS } from '../../src/gateway/http-errors.ts';
import { replyError } from '../../src/tier/refresher-link.ts';

/** The rows of the README's "### Errors" table: code → its HTTP column. */
function readmeErrorTable(): Map<string, string> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('\n### Errors\n');
  expect(start, 'README has an "### Errors" section').toBeGreaterThan(0);
  const section = readme.slice(start + 1, readme.indexOf('\n#', start + 2));
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const code = /^`(HS_ERR_[A-Z0-9_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (code === undefined) continue;
    expect(rows.has(code), `${code} has one row`).toBe(false);
    rows.set(code, cells[2]);
  }
  return rows;
}

/** What a process sees of `value` sent to another thread (structured clone). */
function cloned(value: unknown): unknown {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(value);
  const received = receiveMessageOnPort(port2)?.message;
  port1.close();
  return received;
}

describe('the error catalogue', () => {
  it("every code is in the README's error table with the HTTP status the gateway gives it", () => {
    const rows = readmeErrorTable();
    for (const code of Object.keys(ErrorCodes) as Array<keyof typeof HTTP_STATUS>) {
      expect(rows.has(code), `README documents ${code}`).toBe(true);
      const status = HTTP_STATUS[code];
      const documented = typeof status === 'number' ? `\`${status}\`` : '—';
      expect(rows.get(code), `README's HTTP status of ${code}`).toBe(documented);
    }
    expect([...rows.keys()].filter((code) => !Object.hasOwn(ErrorCodes, code))).toEqual([]);
  });

  it('every code is its own name', () => {
    for (const [k, v] of Object.entries(ErrorCodes)) expect(v).toBe(k);
  });

  it('HotshieldError is recognised across two copies of its module', async () => {
    // A second instance of the module, as when the sources and a build are both loaded.
    const copy = (await import(
      /* @vite-ignore */ `${new URL('../../src/errors.ts', import.meta.url).href}?copy`
    )) as typeof import('../../src/errors.ts');
    expect(copy.HotshieldError).not.toBe(HotshieldError);
    const theirs = new copy.HotshieldError('HS_ERR_TIMEOUT', 'slow');
    expect(theirs).toBeInstanceOf(HotshieldError);
    expect(new HotshieldError('HS_ERR_CLOSED', 'closed')).toBeInstanceOf(copy.HotshieldError);
    expect(new Error('plain')).not.toBeInstanceOf(HotshieldError);
    expect({ code: 'HS_ERR_TIMEOUT', message: 'forged' }).not.toBeInstanceOf(HotshieldError);
  });

  it('a structured clone keeps neither code nor class: the protocol sends the code and rebuilds the error', () => {
    const sent = new HotshieldError('HS_ERR_L2_TIMEOUT', 'GET k took longer than 250 ms');
    const received = cloned(sent) as Error & { code?: string };
    expect(received.message).toBe(sent.message);
    expect(received.code).toBeUndefined();
    expect(received).not.toBeInstanceOf(HotshieldError);
    // What the refresher sends instead: the code as a field, and the tier rebuilds it.
    const reply = cloned({ code: sent.code, message: sent.message }) as {
      code: string;
      message: string;
    };
    const rebuilt = replyError(reply.code, reply.message);
    expect(rebuilt).toBeInstanceOf(HotshieldError);
    expect(rebuilt).toMatchObject({ code: 'HS_ERR_L2_TIMEOUT', message: sent.message });
    // A code the tier does not know (a newer refresher, a bug) is a Redis failure, typed.
    expect(replyError('HS_ERR_SOMETHING_NEW', 'x').code).toBe('HS_ERR_L2_UNAVAILABLE');
  });
});
