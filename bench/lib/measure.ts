/**
 * Timing for single-thread micro-benchmarks.
 *
 * A contender is a function `run(ops)` that performs `ops` operations in its own loop
 * and returns an accumulator built from every result (so V8 cannot drop the work). Each
 * contender has its own loop function, so every call site inside it stays monomorphic;
 * the harness calls `run` once per round, which costs nothing next to the ~10^5–10^6
 * operations of a round.
 *
 * Protocol: warm up each contender for `warmupMs` (JIT tiers up, and the warm-up rate
 * sizes the rounds), then time `rounds` rounds of about `roundMs` each, the contenders
 * interleaved with a rotating start so that slow drift of a noisy VM (frequency, steal
 * time, neighbours) and GC debt left by one contender spread over all of them. The
 * result per contender is ns/op of every round; report the median.
 */

export type Loop = (ops: number) => number;

export interface Contender {
  readonly name: string;
  readonly run: Loop;
  /** Throws if the accumulator of a round is not what `ops` correct results give. */
  readonly check?: (acc: number, ops: number) => void;
}

export interface Timing {
  readonly name: string;
  /** ns per operation, one per timed round. */
  readonly nsPerOp: number[];
  readonly opsPerRound: number;
}

export interface Plan {
  readonly warmupMs: number;
  readonly roundMs: number;
  readonly rounds: number;
}

/** Consumes every accumulator; printed at the end so that no result is dead code. */
let sink = 0;
export const checksum = (): number => sink;
export function consume(acc: number): void {
  sink = (sink + acc) % 0x7fffffff;
}

function timeRun(c: Contender, ops: number): number {
  const t0 = process.hrtime.bigint();
  const acc = c.run(ops);
  const ns = Number(process.hrtime.bigint() - t0);
  c.check?.(acc, ops);
  consume(acc);
  return ns;
}

/** Run `c` for about `ms`; returns the operations per millisecond seen at the end. */
export function warmUp(c: Contender, ms: number): number {
  let ops = 256;
  let spent = 0;
  let rate = 0;
  while (spent < ms * 1e6) {
    const ns = timeRun(c, ops);
    spent += ns;
    rate = (ops / ns) * 1e6;
    // Grow batches until one takes ~5 % of the warm-up, so the last ones run optimized code.
    if (ns < ms * 5e4) ops *= 2;
  }
  return rate;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function measureInterleaved(
  contenders: readonly Contender[],
  plan: Plan,
  progress: (line: string) => void,
): Timing[] {
  const ops: number[] = [];
  for (const c of contenders) {
    progress(`  warm-up ${c.name}`);
    const perMs = warmUp(c, plan.warmupMs);
    ops.push(Math.max(1000, Math.round(perMs * plan.roundMs)));
  }
  const ns: number[][] = contenders.map(() => []);
  for (let r = 0; r < plan.rounds; r++) {
    progress(`  round ${r + 1}/${plan.rounds}`);
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + r) % contenders.length;
      ns[i].push(timeRun(contenders[i], ops[i]) / ops[i]);
    }
  }
  return contenders.map((c, i) => ({ name: c.name, nsPerOp: ns[i], opsPerRound: ops[i] }));
}

/** A contender's rounds reduced to what the report shows; the rounds are kept for the record. */
export interface Summary {
  readonly name: string;
  readonly medianNs: number;
  readonly opsPerSec: number;
  readonly nsPerOp: number[];
}

export function summarize(t: Timing): Summary {
  const m = median(t.nsPerOp);
  return { name: t.name, medianNs: m, opsPerSec: 1e9 / m, nsPerOp: t.nsPerOp };
}
