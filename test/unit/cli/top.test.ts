/**
 * `hotshield top`'s frame (src/cli/top.ts): what it shows, within the terminal's size,
 * and a key's control characters shown as \xNN, never sent to the terminal.
 */
import { describe, expect, it } from 'vitest';
import { parseTopArgs, printable, renderTop } from '../../../src/cli/top.ts';
import type { HotKeysReport } from '../../../src/tier/index.ts';

const options = parseTopArgs(['--url', 'http://127.0.0.1:8080'], {});
const report: HotKeysReport = {
  windowSeconds: 10,
  keys: [
    {
      key: 'video:7',
      readsPerSecond: 41873.2,
      writesPerSecond: 0,
      hitRatio: 0.9999,
      slot: 9302,
      node: '10.0.0.2:7000',
    },
    {
      key: 'evil\u001b]52;c;aGk=\u0007\u001b[2J',
      readsPerSecond: 10,
      writesPerSecond: 1,
      hitRatio: null,
      slot: 1,
      node: null,
    },
  ],
  counters: [{ name: 'likes:7', incrementsPerSecond: 18220.5 }],
  nodes: [
    { node: '10.0.0.2:7000', readsPerSecond: 45110.7, missesPerSecond: 3.1 },
    { node: '10.0.0.3:7000', readsPerSecond: 4511, missesPerSecond: 0 },
  ],
};

describe('hotshield top', () => {
  it('draws keys, masters with a bar each, and counters, within the terminal', () => {
    const lines = renderTop({ report, at: new Date('2026-12-04T19:00:01Z') }, options, 100, 30);
    expect(lines[0]).toBe('hotshield top — http://127.0.0.1:8080 (process) — 19:00:01 — q quits');
    const text = lines.join('\n');
    expect(text).toMatch(/video:7\s+41,873\.2\s+0\.0\s+99\.99\s+10\.0\.0\.2:7000/);
    expect(text).toMatch(/10\.0\.0\.2:7000\s+█+ +45,110\.7/);
    expect(text).toMatch(/10\.0\.0\.3:7000\s+█+░+/);
    expect(text).toMatch(/likes:7\s+18,220\.5/);
    expect(lines.length).toBeLessThanOrEqual(30);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
  });

  it("never writes a key's control characters to the terminal", () => {
    const text = renderTop({ report, at: new Date() }, options, 200, 30).join('\n');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for them
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(text).toContain('evil\\x1b]52;c;aGk=\\x07\\x1b[2J');
    expect(printable('a\u009bb')).toBe('a\\x9bb');
  });

  it('says what is wrong instead of the frame', () => {
    const lines = renderTop(
      { error: '401: this gateway needs --token', at: new Date() },
      options,
      80,
      10,
    );
    expect(lines[1]).toBe('401: this gateway needs --token');
  });
});
