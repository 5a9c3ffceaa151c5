/**
 * Pass `hoist_guards`: a statement whose only effects are global stores, each under the same
 * single-writer guard (`if (thread_id(a) == 0 && ...) store`, single_writer.ts), goes under that
 * guard as a whole, so that the threads it excludes skip computing values no one stores. LLVM sinks
 * such work into the guard where one store uses it, not where several do in different branches
 * (an epilogue whose stores depend on the row's head: the fused QKV GEMV's other warps computed
 * every rotation and stored none, 0.5% of the 7B decode step on an H200).
 *
 * It runs after the barriers pass, so a statement holding a barrier is left as it is; so is one
 * that writes shared memory, makes an atomic or a warp-collective call (shuffles, tensor-core
 * products: every lane must run them), or stores to a local buffer it does not allocate itself
 * (a thread that skipped it would read that buffer unset afterwards). Reads are free.
 */
import type { Buffer, Expr, Node, PrimFunc, Stmt } from "../ir/nodes.ts";
import { ifThen, isWarpCollective } from "../ir/build.ts";
import { rewriteStmt, someNode, walk } from "../ir/transform.ts";
import { firstThreadOf, threadAxisOf } from "./device_ops.ts";
import type { Target } from "./target.ts";

export function hoistGuardsPass(f: PrimFunc, _target?: Target): PrimFunc {
  const hasGuard = (n: Node): boolean => someNode(n, (x) => isIf(x) && guardAxes(x) !== undefined);
  const body = rewriteStmt(f.body, {
    preStmt: (st) => {
      if (guardAxes(st) !== undefined || !hasGuard(st)) return st;
      if (
        st.kind !== "seq" &&
        st.kind !== "allocate" &&
        st.kind !== "let" &&
        st.kind !== "for" &&
        st.kind !== "if"
      )
        return undefined;
      const axes = onlyGuardedStores(st);
      return axes === undefined ? undefined : ifThen(firstThreadOf(axes.split(",").map(Number)), st);
    },
  });
  return body === f.body ? f : { ...f, body };
}

const isIf = (n: Node): n is Stmt => n.kind === "if";

/** The axes a single-writer guard keeps to thread 0 ("0,1"), or undefined for any other statement. */
function guardAxes(s: Stmt): string | undefined {
  if (s.kind !== "if" || s.else || s.then.kind !== "store" || s.then.buffer.scope !== "global")
    return undefined;
  const axes: number[] = [];
  const terms = (e: Expr): boolean => {
    if (e.kind === "binary" && e.op === "&&") return terms(e.a) && terms(e.b);
    if (e.kind !== "binary" || e.op !== "==" || e.b.kind !== "const" || e.b.value !== 0) return false;
    const axis = threadAxisOf(e.a);
    if (axis === undefined) return false;
    axes.push(axis);
    return true;
  };
  return terms(s.cond) ? [...new Set(axes)].sort().join(",") : undefined;
}

/**
 * The axes of the one guard that every effect of s is under, where s's other effects are stores to
 * local buffers it allocates; undefined where s does anything else or its guards differ.
 */
function onlyGuardedStores(s: Stmt): string | undefined {
  const allocated = new Set<Buffer>();
  walk(s, (n) => {
    if (n.kind === "allocate") allocated.add(n.buffer);
  });
  let axes: string | undefined;
  let ok = true;
  walk(s, (n) => {
    if (!ok) return false;
    const guard = isIf(n) ? guardAxes(n) : undefined;
    if (guard !== undefined) {
      if (axes !== undefined && axes !== guard) ok = false;
      axes = guard;
      return false;
    }
    if (n.kind === "call" && isWarpCollective(n.name)) ok = false;
    else if (n.kind === "atomic" || n.kind === "barrier") ok = false;
    else if (n.kind === "store" && !(n.buffer.scope === "local" && allocated.has(n.buffer))) ok = false;
    return undefined;
  });
  return ok ? axes : undefined;
}
