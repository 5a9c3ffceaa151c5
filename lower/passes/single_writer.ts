/**
 * Pass `single_writer`: a store to global memory whose element does not depend on a thread axis
 * (its index and the conditions and loops around it are free of that axis' index) is made by
 * thread 0 of the axis only. In the SPMD model every thread runs such a store (DEVICE_IR.md), and
 * any one of them may be the last: keeping thread 0's is one of the allowed outcomes, and the only
 * safe one when the value reads the element being written (an in-place residual update,
 * y[n] = y[n] + W x, after a cross-thread reduction), since a thread that ran later would read the
 * already-updated element. TVM does the same after its all-reduce.
 *
 * An atomic at block level (outside the thread loops, on an element no thread index picks, global
 * or shared) is likewise made by thread 0 only: the kernel source adds once there (every thread
 * adding would add once per thread); inside a thread loop every thread adds, as the source does
 * once per iteration. A block-level atomic's result must go to shared memory, where the block's
 * other threads read it; a local result would be left unset in theirs, and the pass refuses it.
 */
import type { Expr, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { ifThen } from "../ir/build.ts";
import { rewriteStmt, walk } from "../ir/transform.ts";
import { requireLaunch } from "./launch.ts";
import { LoweringError } from "./errors.ts";
import { firstThreadOf, threadAxisOf } from "./device_ops.ts";
import type { Target } from "./target.ts";

const P = "single_writer";

export function singleWriterPass(f: PrimFunc, _target?: Target): PrimFunc {
  const launch = requireLaunch(f, P);
  const axes = [0, 1, 2].filter((a) => launch.block[a]! > 1);
  if (axes.length === 0) return f;
  // Which variables carry which thread axis (through lets).
  const axisOf = new Map<Var, Set<number>>();
  const threadAxes = (e: Expr): Set<number> => {
    const out = new Set<number>();
    walk(e, (x) => {
      const axis = x.kind === "call" ? threadAxisOf(x) : undefined;
      if (axis !== undefined) out.add(axis);
      if (x.kind === "var") for (const a of axisOf.get(x) ?? []) out.add(a);
      // A load from shared or local memory may hold per-thread values: treat it as depending on every axis.
      if (x.kind === "load" && x.buffer.scope !== "global") for (const a of axes) out.add(a);
    });
    return out;
  };
  walk(f.body, (n) => {
    if (n.kind === "let") axisOf.set(n.v, threadAxes(n.value));
    if (n.kind === "for") axisOf.set(n.loopVar, new Set([...threadAxes(n.min), ...threadAxes(n.extent)]));
  });
  // Enclosing conditions and loop bounds count too: collect them on the way down. So do, for an
  // atomic, the thread loops around it (their `let v = thread_id(a)`, thread_guards.ts): it runs
  // once per thread there, whatever its element and value (an addition is not idempotent).
  const visit = (s: Stmt, context: Set<number>, threadLoops: Set<number>): Stmt =>
    rewriteStmt(s, {
      preStmt: (st) => {
        if (st.kind === "if") {
          const ctx = new Set([...context, ...threadAxes(st.cond)]);
          return {
            ...st,
            then: visit(st.then, ctx, threadLoops),
            ...(st.else ? { else: visit(st.else, ctx, threadLoops) } : {}),
          };
        }
        if (st.kind === "for") {
          const ctx = new Set([...context, ...threadAxes(st.min), ...threadAxes(st.extent)]);
          return { ...st, body: visit(st.body, ctx, threadLoops) };
        }
        const loopAxis = st.kind === "let" ? threadAxisOf(st.value) : undefined;
        if (st.kind === "let" && loopAxis !== undefined)
          return { ...st, body: visit(st.body, context, new Set([...threadLoops, loopAxis])) };
        const atomic = st.kind === "atomic";
        if (!atomic && (st.kind !== "store" || st.buffer.scope !== "global")) return undefined;
        const used = new Set([
          ...context,
          ...st.indices.flatMap((i) => [...threadAxes(i)]),
          ...(atomic ? threadLoops : []),
        ]);
        const free = axes.filter((a) => !used.has(a));
        if (free.length === 0) return st;
        if (atomic && st.result && st.result.buffer.scope !== "shared")
          throw new LoweringError(
            P,
            `atomicAdd on ${st.buffer.name} runs in one thread (no thread index picks its element), so its old value must go to a shared element that the other threads can read, not to ${st.result.buffer.scope} ${st.result.buffer.name}: declare ${st.result.buffer.name} with shared(...)`,
          );
        return ifThen(firstThreadOf(free), st);
      },
    });
  return { ...f, body: visit(f.body, new Set(), new Set()) };
}
