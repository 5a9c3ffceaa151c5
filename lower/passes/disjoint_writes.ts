/**
 * Pass `disjoint_writes`: marks the serial loops whose iterations, with every thread of the thread
 * loops inside, write different shared-memory elements and read none: the steps of a cooperative
 * copy too large for the block's threads to do at once. The barriers pass then treats such a
 * loop as one access (as a vectorized loop) instead of putting a barrier in every step, which it
 * would have to do knowing only that the steps write the same buffer.
 *
 * Runs before thread_guards, while the thread loops are still loops, so the schedule's dependence test applies:
 * a loop is marked when it carries no dependence into a shared buffer (lower/schedule/analysis.ts
 * carriedDependences, whose range test spans the loops inside, thread loops included). Within one
 * step the threads write different elements already: bind proved it when the loops were bound.
 */
import type { For, PrimFunc, Stmt } from "../ir/nodes.ts";
import { rewriteStmt, walk } from "../ir/transform.ts";
import { carriedDependences } from "../schedule/dependence.ts";
import type { Target } from "./target.ts";

/** The annotation the barriers pass reads. */
export const DISJOINT_WRITES = "tkc.disjoint_writes";

function writesSharedOnly(body: Stmt): boolean {
  let stores = 0;
  let ok = true;
  walk(body, (n) => {
    if (n.kind === "load" && n.buffer.scope === "shared") ok = false;
    if (n.kind === "store" && n.buffer.scope === "shared") stores++;
    if (n.kind === "barrier" || (n.kind === "for" && n.thread?.startsWith("blockIdx"))) ok = false;
    return ok;
  });
  return ok && stores > 0;
}

function isDisjoint(loop: For): boolean {
  if (loop.forKind !== "serial" && loop.forKind !== "unrolled") return false;
  if (!writesSharedOnly(loop.body)) return false;
  return carriedDependences(loop, { ignore: (b) => b.scope !== "shared" }).length === 0;
}

export function disjointWritesPass(f: PrimFunc, _target?: Target): PrimFunc {
  const body = rewriteStmt(f.body, {
    stmt: (s) =>
      s.kind === "for" && isDisjoint(s)
        ? { ...s, annotations: { ...s.annotations, [DISJOINT_WRITES]: true } }
        : s,
  });
  return body === f.body ? f : { ...f, body };
}
