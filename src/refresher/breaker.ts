/**
 * A circuit breaker per Redis node. After `threshold` consecutive failed calls to a node
 * (timeouts, closed connections, cluster down) the node's circuit opens: calls to it
 * fail at once with HS_ERR_L2_UNAVAILABLE instead of piling onto a dead or hung node.
 * After `cooldownMs` one probe call is let through (half-open); its success closes the
 * circuit, its failure opens it for another cool-down.
 *
 * Per-key errors (WRONGTYPE, a redirect) say nothing about the node's health and are
 * not reported here. Time is passed in so the state machine is a pure function of calls.
 */

interface NodeState {
  failures: number;
  openUntil: number;
  probing: boolean;
}

export class Breaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #nodes = new Map<string, NodeState>();
  #rejected = 0;
  #opened = 0;

  constructor(threshold: number, cooldownMs: number) {
    this.#threshold = threshold;
    this.#cooldownMs = cooldownMs;
  }

  /** May a call go to `node` now? Counts a rejection when not. */
  allow(node: string, now: number): boolean {
    const s = this.#nodes.get(node);
    if (s === undefined || s.failures < this.#threshold) return true;
    if (now >= s.openUntil && !s.probing) {
      s.probing = true;
      return true;
    }
    this.#rejected++;
    return false;
  }

  success(node: string): void {
    this.#nodes.delete(node);
  }

  /** Count a failed call; true when it opened the circuit (or re-opened it after a probe). */
  failure(node: string, now: number): boolean {
    let s = this.#nodes.get(node);
    if (s === undefined) {
      s = { failures: 0, openUntil: 0, probing: false };
      this.#nodes.set(node, s);
    }
    s.failures++;
    if (s.failures < this.#threshold) return false;
    const opened = s.probing || s.failures === this.#threshold;
    if (opened) this.#opened++;
    s.openUntil = now + this.#cooldownMs;
    s.probing = false;
    return opened;
  }

  /** Nodes whose circuit is open (or half-open) now. */
  openNodes(now: number): string[] {
    const out: string[] = [];
    for (const [node, s] of this.#nodes)
      if (s.failures >= this.#threshold && (now < s.openUntil || s.probing)) out.push(node);
    return out;
  }

  /** Calls refused while open, and times a circuit opened, since creation. */
  get counts(): { rejected: number; opened: number } {
    return { rejected: this.#rejected, opened: this.#opened };
  }
}
