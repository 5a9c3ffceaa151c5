/**
 * Pass `vectorize`: vectorized loops stay loops — `for (v = 0; v < lanes; v++) // vectorized` —
 * in a shape a renderer can turn into vector instructions without analysis of its own:
 *
 * - the extent is a constant power of two up to 16 (the lane count);
 * - the body is straight-line: lets and stores only (no loops, ifs, barriers, allocations);
 * - lanes are independent: each buffer the body stores to is stored and loaded at one index
 *   only, and that index depends on v (no two lanes touch the same element);
 * - every index is canonical: `base + v` when it steps by one element per lane (base free of v;
 *   `classifyVectorAccess` says so and whether base is a multiple of the lane count, i.e. the
 *   access is aligned to lanes * element bytes), free of v (the same element for all lanes), or
 *   anything else (a gather: one scalar access per lane).
 *
 * The LLVM renderer turns an aligned contiguous access into one `<lanes x T>` load or store
 * (16 bytes for 4 x f32 or 8 x f16), arithmetic on lane-varying values into vector operations,
 * and uniform values into broadcasts. A loop that does not fit is demoted to `unrolled` (then
 * expanded by the unroll pass) — tail guards from split that depend on the lane, for instance (a
 * guard free of the lane is hoisted out of the loop first) — or, with a symbolic
 * extent, to `serial`. Running the loop serially is always a correct reading (the CPU does so).
 */
import type { Buffer, Expr, For, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { add, constant, ifThen } from "../ir/build.ts";
import { sameExpr } from "../ir/equal.ts";
import { hasLoad, rewriteStmt, substitute, usesVar, walk } from "../ir/transform.ts";
import { affineCoefficient, dependsOn, letsIn } from "../schedule/analysis.ts";
import { Simplifier } from "./simplify.ts";
import type { Target } from "./target.ts";

export type VectorAccess =
  | { readonly kind: "contiguous"; readonly base: Expr; readonly aligned: boolean }
  | { readonly kind: "uniform" }
  | { readonly kind: "gather" };

const pow2 = (x: number): boolean => x > 0 && (x & (x - 1)) === 0;

/** Whether e is a multiple of k by its form (constants, products with a multiple, sums of them). */
export function divisibleBy(e: Expr, k: number): boolean {
  if (k === 1) return true;
  if (e.kind === "const") return e.value % k === 0;
  if (e.kind !== "binary") return false;
  if (e.op === "*") return divisibleBy(e.a, k) || divisibleBy(e.b, k);
  if (e.op === "+" || e.op === "-") return divisibleBy(e.a, k) && divisibleBy(e.b, k);
  return false;
}

/**
 * How the lanes of vectorized loop variable v access a (flat) index. `lets` are the lets bound
 * inside the loop (analysis.ts letsIn): an index through a lane-varying let is not uniform.
 */
export function classifyVectorAccess(
  index: Expr,
  v: Var,
  lanes: number,
  lets: ReadonlyMap<Var, Expr> = new Map(),
): VectorAccess {
  if (!dependsOn(index, v, lets)) return { kind: "uniform" };
  if (affineCoefficient(index, v) !== 1) return { kind: "gather" };
  const base = new Simplifier().expr(substitute(index, new Map([[v, constant(0, "i32")]])));
  return { kind: "contiguous", base, aligned: divisibleBy(base, lanes) };
}

function straightLine(s: Stmt): boolean {
  if (s.kind === "seq") return s.body.every(straightLine);
  if (s.kind === "let") return straightLine(s.body);
  return s.kind === "store";
}

/** Lanes are independent when each stored buffer is touched at one index, which varies by lane. */
function lanesIndependent(body: Stmt, v: Var): boolean {
  const lets = letsIn(body);
  const indexOf = new Map<Buffer, Expr[]>();
  walk(body, (n) => {
    if (n.kind === "load" || n.kind === "store") {
      const list = indexOf.get(n.buffer) ?? [];
      list.push(n.indices[0]!);
      indexOf.set(n.buffer, list);
    }
  });
  let ok = true;
  walk(body, (n) => {
    if (n.kind !== "store") return;
    const idx = n.indices[0]!;
    if (!dependsOn(idx, v, lets) || !indexOf.get(n.buffer)!.every((i) => sameExpr(i, idx))) ok = false;
  });
  return ok;
}

function canonical(loop: For): For {
  const v = loop.loopVar;
  const simp = new Simplifier();
  simp.setRange(v, { lo: 0, hi: (loop.extent as { value: number }).value - 1 });
  // Lets without loads are inlined into indices, so a lane-varying index shows v itself.
  const pure = new Map([...letsIn(loop.body)].filter(([, e]) => !hasLoad(e)));
  const fix = (i: Expr): Expr => {
    const e = simp.expr(substitute(i, pure));
    if (!usesVar(e, v) || affineCoefficient(e, v) !== 1) return e;
    return add(simp.expr(substitute(e, new Map([[v, constant(0, "i32")]]))), v);
  };
  const body = rewriteStmt(loop.body, {
    expr: (e) => (e.kind === "load" ? { ...e, indices: e.indices.map(fix) } : e),
    stmt: (s) => (s.kind === "store" ? { ...s, indices: s.indices.map(fix) } : s),
  });
  return { ...loop, body };
}

/**
 * `for (v) if (c) body` with c free of v (a tail guard from splitting an outer loop, as an
 * element-wise row of 11008 = 1376 runs of 8 over 256 threads leaves) as `if (c) for (v) body`,
 * so the loop can stay vectorized.
 */
function hoistGuards(loop: For): Stmt {
  let body = loop.body;
  const guards: Expr[] = [];
  for (;;) {
    const inner = body.kind === "block" ? body.body : body;
    if (inner.kind !== "if" || inner.else || usesVar(inner.cond, loop.loopVar)) break;
    guards.push(inner.cond);
    body = body.kind === "block" ? { ...body, body: inner.then } : inner.then;
  }
  if (!guards.length) return vectorizeLoop(loop);
  return guards.reduceRight<Stmt>((s, cond) => ifThen(cond, s), vectorizeLoop({ ...loop, body }));
}

function vectorizeLoop(loop: For): For {
  if (loop.extent.kind !== "const") return { ...loop, forKind: "serial" };
  const lanes = loop.extent.value;
  const canon = canonical(loop);
  if (!pow2(lanes) || lanes > 16 || !straightLine(canon.body) || !lanesIndependent(canon.body, loop.loopVar))
    return { ...loop, forKind: "unrolled" };
  return canon;
}

/**
 * Whether a vectorized loop may run every lane's loads before any lane's stores (the order of a
 * vector instruction, which renderers use to merge the lanes' accesses): a constant extent, and
 * no buffer loaded after a store to it in the body (a lane reading back what it stored would read
 * the old value); lanes touch different elements of what they store (canonical form above).
 */
export function loadsBeforeStores(s: For): boolean {
  if (s.extent.kind !== "const") return false;
  const stored = new Set<Buffer>();
  let ok = true;
  walk(s.body, (n) => {
    if (n.kind === "store") {
      walk(n.value, (e) => {
        if (e.kind === "load" && stored.has(e.buffer)) ok = false;
      });
      for (const i of n.indices)
        walk(i, (e) => {
          if (e.kind === "load" && stored.has(e.buffer)) ok = false;
        });
      stored.add(n.buffer);
      return false;
    }
    if (n.kind === "load" && stored.has(n.buffer)) ok = false;
    return ok;
  });
  return ok;
}

export function vectorizePass(f: PrimFunc, _target?: Target): PrimFunc {
  const body = rewriteStmt(f.body, {
    stmt: (s) => (s.kind === "for" && s.forKind === "vectorized" ? hoistGuards(s) : s),
  });
  return body === f.body ? f : { ...f, body };
}
