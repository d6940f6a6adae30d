/**
 * Model-based tests: random command sequences run against the L1 table and a Map; after
 * every command the two must agree. With a roomy table they agree exactly; with a small
 * one eviction may drop keys, but a key that is present must hold its latest value.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { L1Table, L1Writer } from '../../../src/l1/index.ts';
import { makeL1 } from '../../fixtures/l1/l1.ts';
import { flushCounters } from '../../fixtures/l1/l1-flush.ts';

interface Model {
  values: Map<string, { value: Buffer; flags: number }>;
  counters: Map<string, number>;
  exact: boolean;
}
interface Real {
  writer: L1Writer;
  table: L1Table;
}

const key = fc.oneof(
  fc.constantFrom('a', 'b', 'c', 'user:1', 'user:2', 'ключ', '🔥'),
  fc.string({ minLength: 1, maxLength: 24, unit: 'grapheme' }),
);
const value = fc.uint8Array({ maxLength: 1500, size: 'max' }).map((u) => Buffer.from(u));

function check(m: Model, r: Real, k: string) {
  const got = r.table.get(k);
  const want = m.values.get(k);
  if (got === undefined) {
    if (want !== undefined && m.exact) throw new Error(`${k}: missing`);
    return;
  }
  if (want === undefined) throw new Error(`${k}: present but the model has no value`);
  if (!got.value.equals(want.value) || got.flags !== want.flags)
    throw new Error(`${k}: wrong value`);
}

class SetCmd implements fc.Command<Model, Real> {
  readonly k: string;
  readonly v: Buffer;
  readonly flags: number;
  constructor(k: string, v: Buffer, flags: number) {
    this.k = k;
    this.v = v;
    this.flags = flags;
  }
  check = () => true;
  run(m: Model, r: Real) {
    if (Buffer.byteLength(this.k) > 1024) return;
    if (r.writer.set(this.k, this.v, { softTtlMs: 1e9, flags: this.flags }) > 0) {
      m.values.set(this.k, { value: this.v, flags: this.flags });
    } else if (m.exact) {
      throw new Error('refused in a roomy table');
    } else {
      m.values.delete(this.k);
    }
    check(m, r, this.k);
  }
  toString = () => `set(${JSON.stringify(this.k)}, ${this.v.length}B, ${this.flags})`;
}

class GetCmd implements fc.Command<Model, Real> {
  readonly k: string;
  constructor(k: string) {
    this.k = k;
  }
  check = () => true;
  run(m: Model, r: Real) {
    if (Buffer.byteLength(this.k) > 1024) return;
    check(m, r, this.k);
  }
  toString = () => `get(${JSON.stringify(this.k)})`;
}

class DeleteCmd implements fc.Command<Model, Real> {
  readonly k: string;
  constructor(k: string) {
    this.k = k;
  }
  check = () => true;
  run(m: Model, r: Real) {
    if (Buffer.byteLength(this.k) > 1024) return;
    const existed = r.writer.delete(this.k);
    if (m.exact && existed !== m.values.has(this.k))
      throw new Error(`delete(${this.k}) returned ${existed}`);
    m.values.delete(this.k);
    check(m, r, this.k);
  }
  toString = () => `delete(${JSON.stringify(this.k)})`;
}

class ClearCmd implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real) {
    r.writer.clear();
    for (const k of m.values.keys())
      if (r.table.get(k) !== undefined) throw new Error(`${k} survived clear`);
    m.values.clear();
  }
  toString = () => 'clear()';
}

class AddCmd implements fc.Command<Model, Real> {
  readonly name: string;
  readonly by: number;
  constructor(name: string, by: number) {
    this.name = name;
    this.by = by;
  }
  check = () => true;
  run(m: Model, r: Real) {
    r.table.addCounter(this.name, this.by);
    m.counters.set(this.name, (m.counters.get(this.name) ?? 0) + this.by);
    if (r.table.pendingCounter(this.name) !== BigInt(m.counters.get(this.name) ?? 0))
      throw new Error('pending mismatch');
  }
  toString = () => `add(${this.name}, ${this.by})`;
}

class DrainCmd implements fc.Command<Model, Real> {
  check = () => true;
  run(m: Model, r: Real) {
    const got = flushCounters(r.writer);
    for (const [name, v] of m.counters)
      if (v !== 0 && got.get(name) !== BigInt(v)) throw new Error(`drain ${name}`);
    for (const [name, v] of got)
      if (BigInt(m.counters.get(name) ?? 0) !== v) throw new Error(`drain extra ${name}`);
    m.counters.clear();
  }
  toString = () => 'drain()';
}

const setCmd = fc.tuple(key, value, fc.nat(0xffff)).map(([k, v, f]) => new SetCmd(k, v, f));
const commands = [
  setCmd,
  setCmd,
  setCmd,
  key.map((k) => new GetCmd(k)),
  key.map((k) => new DeleteCmd(k)),
  fc
    .tuple(
      fc.constantFrom('likes', 'views', 'x'),
      fc.integer({ min: -1000, max: 1000 }).filter((n) => n !== 0),
    )
    .map(([n, by]) => new AddCmd(n, by)),
  fc.constant(new DrainCmd()),
];
// Clear is rare in real use and would keep a small table from ever filling up.
const commandsWithClear = [...commands, fc.constant(new ClearCmd())];

describe('L1 model-based', () => {
  it('agrees exactly with a Map when nothing needs evicting', () => {
    fc.assert(
      fc.property(fc.commands(commandsWithClear, { maxCommands: 300, size: 'max' }), (cmds) => {
        const { writer, table } = makeL1({ bytes: 4 << 20, maxValueBytes: 2048 });
        fc.modelRun(
          () => ({
            model: { values: new Map(), counters: new Map(), exact: true },
            real: { writer, table },
          }),
          cmds,
        );
        writer.close();
        table.close();
      }),
      { numRuns: 150 },
    );
  });

  it('never returns a wrong value when a small table evicts', () => {
    let evictions = 0;
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 600, size: 'max' }), (cmds) => {
        const { writer, table } = makeL1({
          bytes: 64 * 1024,
          maxValueBytes: 2048,
          maxCounters: 64,
        });
        fc.modelRun(
          () => ({
            model: { values: new Map(), counters: new Map(), exact: false },
            real: { writer, table },
          }),
          cmds,
        );
        evictions += table.stats().evictions;
        writer.close();
        table.close();
      }),
      { numRuns: 100 },
    );
    expect(evictions).toBeGreaterThan(1000);
  });
});
