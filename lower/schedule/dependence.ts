/**
 * The dependences a loop carries (carriedDependences): pairs of accesses, one a store, that
 * different iterations may make to the same element, found with analysis.ts's accesses and its
 * pinning of index variables; atomic updates of an element never race with each other, and the
 * last-iteration protocol of atomic counters orders the last iteration's accesses after the
 * others'. The schedule's bind, parallel and vectorize refuse a loop that carries any.
 */
import type { Atomic, Buffer, Expr, For, Node, Stmt, Store } from "../ir/nodes.ts";
import { sameExpr, sameIndices } from "../ir/equal.ts";
import { walk } from "../ir/transform.ts";
import {
  accessesIn,
  allocatedIn,
  dependsOn,
  describeAccess,
  isUpdate,
  letsIn,
  loopSpans,
  loopsUnder,
  neverEqual,
  pinnedVars,
  type Access,
} from "./analysis.ts";

export interface Dependence {
  readonly kind: "reduction" | "conflict";
  readonly write: Access;
  readonly other: Access;
  readonly message: string;
}

export interface DependenceOptions {
  /** Buffers to leave out (private to each iteration by their scope, for example). */
  readonly ignore?: (b: Buffer) => boolean;
  /** Leave out reductions (an update at an index free of the loop variable, and reads of it). */
  readonly allowReductions?: boolean;
}

/**
 * Which pairs of accesses in different iterations of `loop` the last-iteration protocol orders:
 * each iteration adds 1 to an element no iteration picks apart (`old[0] = atomicAdd(count[h], 1)`)
 * and code under `if (old[0] == extent - 1)` runs in the iteration that added last, after every
 * other iteration's update (the atomic's release and acquire, nodes.ts Atomic). Its accesses are
 * ordered after whatever the other iterations did before their update (the atomic included), and
 * no two iterations both run it. The counter must start at 0 (the guarded code resets it for the
 * next launch): the kernel's author answers for that.
 */
function lastIterationOrder(loop: For, accesses: readonly Access[]): (a: Access, b: Access) => boolean {
  const v = loop.loopVar;
  const guarded = new Set<Node>();
  // Where, in program order, each guard's atomic was (an access before it is published by it).
  const published = new Map<Node, number>();
  const counters: { atomic: Atomic; result: NonNullable<Atomic["result"]> }[] = [];
  // A counter counts each iteration once: its atomic runs unconditionally, in no loop inside.
  const once = new Set<Node>();
  const straight = (s: Stmt): void => {
    if (s.kind === "seq") s.body.forEach(straight);
    else if (s.kind === "let" || s.kind === "allocate" || s.kind === "block") straight(s.body);
    else once.add(s);
  };
  straight(loop.body);
  walk(loop.body, (n) => {
    if (
      n.kind === "atomic" &&
      once.has(n) &&
      n.result &&
      n.value.kind === "const" &&
      n.value.value === 1 &&
      !n.indices.some((i) => dependsOn(i, v))
    )
      counters.push({ atomic: n, result: n.result });
    if (n.kind !== "if" || n.cond.kind !== "binary" || n.cond.op !== "==") return;
    const { a, b } = n.cond;
    const counter = counters.find(
      (c) =>
        a.kind === "load" &&
        a.buffer === c.result.buffer &&
        sameIndices(a.indices, c.result.indices) &&
        isLastIteration(b, loop.extent),
    );
    if (!counter) return;
    const at = accesses.reduce((last, x, i) => (x.atomic === counter.atomic ? i : last), -1);
    walk(n.then, (x) => {
      if (x.kind === "load" || x.kind === "store") {
        guarded.add(x);
        published.set(x, at);
      }
    });
  });
  if (!guarded.size) return () => false;
  const position = new Map(accesses.map((x, i) => [x, i]));
  const before = (x: Access, guard: Access): boolean => position.get(x)! <= published.get(guard.node)!;
  return (a, b) => {
    const [ga, gb] = [guarded.has(a.node), guarded.has(b.node)];
    if (ga && gb) return true;
    if (ga) return before(b, a);
    if (gb) return before(a, b);
    return false;
  };
}

/** Whether e is extent - 1 (the last iteration's index of a loop from 0). */
function isLastIteration(e: Expr, extent: Expr): boolean {
  if (e.kind === "const" && extent.kind === "const") return e.value === extent.value - 1;
  return (
    e.kind === "binary" && e.op === "-" && e.b.kind === "const" && e.b.value === 1 && sameExpr(e.a, extent)
  );
}

/**
 * The dependences `loop` carries: pairs of accesses, one a store, that different iterations of
 * the loop may make to the same element (of a buffer that outlives one iteration). A loop whose
 * iterations run at once (parallel, vectorized, bound to threads) must carry none.
 */
export function carriedDependences(loop: For, opts: DependenceOptions = {}): Dependence[] {
  const v = loop.loopVar;
  const inner = allocatedIn(loop.body);
  const accesses = accessesIn(loop.body);
  const ordered = lastIterationOrder(loop, accesses);
  const lets = letsIn(loop.body);
  const spans = loopSpans([loop, ...loopsUnder(loop.body)]);
  const out: Dependence[] = [];
  const reported = new Set<Buffer>();
  for (const w of accesses) {
    if (w.kind !== "store" || inner.has(w.buffer) || opts.ignore?.(w.buffer) || reported.has(w.buffer))
      continue;
    const fixed = !w.expanded.some((i) => dependsOn(i, v));
    const isReduction = fixed && isUpdate(w.node as Store, lets);
    // The store against itself first, so a reduction is reported as one.
    for (const a of [w, ...accesses.filter((x) => x !== w)]) {
      if (a.buffer !== w.buffer) continue;
      if (isReduction && opts.allowReductions && sameIndices(w.expanded, a.expanded)) continue;
      // Atomic updates of an element never race with each other.
      if (w.atomic && a.atomic && a.buffer === w.atomic.buffer && w.buffer === a.atomic.buffer) continue;
      if (ordered(w, a)) continue;
      if (pinnedVars(w, a, spans).has(v)) continue;
      if (neverEqual(w.expanded, a.expanded, spans)) continue;
      const message =
        isReduction && a === w
          ? `every iteration of ${v.name} writes ${describeAccess(w)}: ${v.name} carries a reduction into ${w.buffer.name}`
          : fixed && a === w
            ? `every iteration of ${v.name} overwrites ${describeAccess(w)}: the value left depends on which iteration writes last`
            : a === w
              ? `different iterations of ${v.name} may write the same element of ${w.buffer.name} through ${describeAccess(w)}`
              : `different iterations of ${v.name} may touch the same element of ${w.buffer.name}: one writes ${describeAccess(w)}, another ${a.kind === "load" ? "reads" : "writes"} ${describeAccess(a)}`;
      out.push({ kind: isReduction ? "reduction" : "conflict", write: w, other: a, message });
      reported.add(w.buffer);
      break;
    }
  }
  return out;
}
