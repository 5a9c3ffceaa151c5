/**
 * Which values are the same in every thread of a block (uniform): symbols, scalar parameters,
 * block indices, loads at a uniform index of a global buffer the kernel never writes (a scalar
 * read from device memory, such as the decode step's length), and what is computed from them —
 * not thread indices, shuffles or other loads (conservatively: memory may differ per thread).
 * Barriers and shuffles may only run under uniform control flow; passes walking the body declare
 * variables as they bind them.
 */
import type { Buffer, Expr, PrimFunc, Var } from "../ir/nodes.ts";
import { atomicAccesses, walk } from "../ir/transform.ts";
import { isWarpCollective } from "../ir/build.ts";

export class Uniformity {
  private readonly uniform = new Set<Var>();
  /** Global buffers no store of the kernel writes: every thread reads the same values. */
  private readonly readOnly = new Set<Buffer>();

  constructor(f: PrimFunc) {
    for (const s of f.symbols) this.uniform.add(s);
    for (const p of f.params) if (p.kind === "scalar") this.uniform.add(p.v);
    const written = new Set<Buffer>();
    walk(f.body, (n) => {
      if (n.kind === "store") written.add(n.buffer);
      if (n.kind === "atomic") for (const a of atomicAccesses(n)) written.add(a.buffer);
    });
    for (const p of f.params)
      if (p.kind === "buffer" && p.buffer.scope === "global" && !written.has(p.buffer))
        this.readOnly.add(p.buffer);
  }

  isUniform(e: Expr): boolean {
    let ok = true;
    walk(e, (x) => {
      if (x.kind === "load" && !(this.readOnly.has(x.buffer) && x.indices.every((i) => this.isUniform(i))))
        ok = false;
      if (x.kind === "var" && !this.uniform.has(x)) ok = false;
      if (x.kind === "call" && (x.name === "thread_id" || isWarpCollective(x.name))) ok = false;
      return ok;
    });
    return ok;
  }

  /** Records a let or loop variable: uniform when its value (or bounds) are. */
  bind(v: Var, ...values: readonly Expr[]): void {
    if (values.every((e) => this.isUniform(e))) this.uniform.add(v);
  }
}
