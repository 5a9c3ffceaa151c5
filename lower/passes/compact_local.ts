/**
 * Pass `compact_local`: a local buffer is private to each thread, so a dimension that every access
 * indexes by the thread index (of one axis) holds, in each thread, one element only: the
 * dimension is dropped. A schedule that binds the loops around a local accumulator tile
 * (`acc[ty][tx]`, allocated outside the thread loops) thereby gets one register per thread, not
 * the whole tile (TVM's CompactBufferAllocation, for this common case).
 *
 * Runs after `thread_guards`, where thread indices are `let v = thread_id(a)`.
 */
import type { Buffer, Expr, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { buffer, constant } from "../ir/build.ts";
import { atomicAccesses, rewriteStmt, walk } from "../ir/transform.ts";
import type { Target } from "./target.ts";
import { threadAxisOf } from "./device_ops.ts";

/** The thread axis an index is, when it is exactly a thread index. */
function threadAxis(e: Expr, axes: ReadonlyMap<Var, number>): number | undefined {
  return e.kind === "var" ? axes.get(e) : threadAxisOf(e);
}

export function compactLocalPass(f: PrimFunc, _target?: Target): PrimFunc {
  const axes = new Map<Var, number>();
  const accesses = new Map<Buffer, (readonly Expr[])[]>();
  walk(f.body, (n) => {
    const axis = n.kind === "let" ? threadAxisOf(n.value) : undefined;
    if (n.kind === "let" && axis !== undefined) axes.set(n.v, axis);
    const touched =
      n.kind === "load" || n.kind === "store" ? [n] : n.kind === "atomic" ? atomicAccesses(n) : [];
    for (const a of touched)
      if (a.buffer.scope === "local") {
        const list = accesses.get(a.buffer) ?? [];
        list.push(a.indices);
        accesses.set(a.buffer, list);
      }
  });
  // For each local buffer, the dimensions indexed by the same thread axis in every access.
  const compact = new Map<Buffer, { keep: number[]; buffer: Buffer }>();
  for (const [b, list] of accesses) {
    if (b.allocShape || b.shape.length === 0) continue;
    const keep = b.shape
      .map((_, d) => d)
      .filter((d) => {
        const first = threadAxis(list[0]![d]!, axes);
        return first === undefined || !list.every((idx) => threadAxis(idx[d]!, axes) === first);
      });
    if (keep.length === b.shape.length) continue;
    const shape = keep.length ? keep.map((d) => b.shape[d]!) : [constant(1, "i32")];
    compact.set(b, { keep, buffer: buffer(b.name, b.dtype, shape, b.scope) });
  }
  if (!compact.size) return f;
  const indices = (b: Buffer, idx: readonly Expr[]): Expr[] => {
    const c = compact.get(b)!;
    return c.keep.length ? c.keep.map((d) => idx[d]!) : [constant(0, "i32")];
  };
  const body = rewriteStmt(f.body, {
    expr: (e) =>
      e.kind === "load" && compact.has(e.buffer)
        ? { ...e, buffer: compact.get(e.buffer)!.buffer, indices: indices(e.buffer, e.indices) }
        : e,
    stmt: (s): Stmt => {
      if (s.kind === "atomic" && s.result && compact.has(s.result.buffer)) {
        const r = s.result;
        return {
          ...s,
          result: { buffer: compact.get(r.buffer)!.buffer, indices: indices(r.buffer, r.indices) },
        };
      }
      if (s.kind === "store" && compact.has(s.buffer))
        return { ...s, buffer: compact.get(s.buffer)!.buffer, indices: indices(s.buffer, s.indices) };
      if (s.kind === "allocate" && compact.has(s.buffer))
        return { ...s, buffer: compact.get(s.buffer)!.buffer };
      return s;
    },
  });
  return { ...f, body };
}
