/**
 * Loop transformations: split, fuse and reorder. Each rewrites the loop nest without changing
 * the values computed, refusing where it cannot show that (see analysis.ts for the dependence
 * test reorder relies on).
 */
import type { Expr, For, PrimFunc, Stmt, Store, Var } from "../ir/nodes.ts";
import { add, binary, constant, forLoop, ifThen, isConst, mul, seq, variable } from "../ir/build.ts";
import { substitute, usesVar } from "../ir/transform.ts";
import {
  accessesIn,
  allocatedIn,
  dependsOn,
  describeAccess,
  loadsIn,
  loopSpans,
  loopsUnder,
  pinnedVars,
  isUpdate,
} from "./analysis.ts";
import { ScheduleError } from "./errors.ts";
import { registerPrimitives, type PrimitiveResult } from "./registry.ts";
import { loopPath, namesIn, replaceStmt } from "./state.ts";

/** Fresh names for several new variables at once (each distinct from the others too). */
export function freshNames(f: PrimFunc, bases: readonly string[]): string[] {
  const used = namesIn(f);
  return bases.map((base) => {
    let name = base;
    for (let n = 1; used.has(name); n++) name = `${base}_${n}`;
    used.add(name);
    return name;
  });
}

function loopKindText(l: For): string {
  return l.forKind === "thread" ? `bound to ${l.thread ?? "a thread axis"}` : l.forKind;
}

function requireSerial(l: For, primitive: string, hint: string): void {
  if (l.forKind !== "serial")
    throw new ScheduleError(primitive, `loop ${l.loopVar.name} is already ${loopKindText(l)}; ${hint}`);
}

const floordiv = (a: Expr, b: Expr): Expr => (isConst(b, 1) ? a : binary("floordiv", a, b));
const floormod = (a: Expr, b: Expr): Expr =>
  isConst(b, 1) ? constant(0, a.dtype) : binary("floormod", a, b);

function split(f: PrimFunc, name: string, factors: readonly (number | null)[]): PrimitiveResult {
  const P = "split";
  const { loop } = loopPath(f, name, P);
  requireSerial(loop, P, "split loops before binding, vectorizing, unrolling or parallelizing them");
  if (!Array.isArray(factors) || factors.length < 2)
    throw new ScheduleError(P, `split ${name}: give at least two factors, got ${JSON.stringify(factors)}`);
  const nulls = factors.filter((x) => x === null).length;
  if (nulls > 1)
    throw new ScheduleError(
      P,
      `split ${name}: at most one factor may be null (inferred from the extent), got ${nulls}`,
    );
  for (const x of factors)
    if (x !== null && !(Number.isInteger(x) && x > 0))
      throw new ScheduleError(P, `split ${name}: factor ${String(x)} is not a positive integer`);
  const dt = loop.loopVar.dtype;
  const known = factors.reduce<number>((p, x) => p * (x ?? 1), 1);
  const e = loop.extent;
  let inferred: Expr | undefined;
  let exact: boolean;
  if (nulls === 1) {
    if (e.kind === "const") {
      inferred = constant(Math.ceil(e.value / known), dt);
      exact = e.value % known === 0;
    } else {
      // ceil(extent / known): the tail iterations past the extent are guarded off below.
      inferred = known === 1 ? e : floordiv(add(e, constant(known - 1, dt)), constant(known, dt));
      exact = known === 1;
    }
  } else if (e.kind === "const") {
    if (known < e.value)
      throw new ScheduleError(
        P,
        `split ${name}: the factors multiply to ${known}, less than the extent ${e.value}`,
      );
    exact = known === e.value;
  } else {
    throw new ScheduleError(
      P,
      `split ${name}: the extent ${describeExtent(loop)} is symbolic, so fixed factors cannot be shown to cover it; give one factor as null to infer it`,
    );
  }
  const extents = factors.map((x) => (x === null ? inferred! : constant(x, dt)));
  const names = freshNames(
    f,
    factors.map((_, k) => `${name}_${k}`),
  );
  const vars = names.map((n) => variable(n, dt));
  // old = min + ((v0 * f1 + v1) * f2 + v2) ...: the outer loop is the most significant digit.
  let flat: Expr = vars[0]!;
  for (let k = 1; k < vars.length; k++) flat = add(mul(flat, extents[k]!), vars[k]!);
  let body: Stmt = substitute(loop.body, new Map([[loop.loopVar, add(loop.min, flat)]]));
  if (!exact) body = guardInside(body, binary("<", flat, e));
  for (let k = vars.length - 1; k >= 0; k--) body = forLoop(vars[k]!, constant(0, dt), extents[k]!, body);
  return { func: replaceStmt(f, loop, body), result: names };
}

/**
 * Wraps the innermost statements of s in `if (cond)`: through loops (so a perfect nest stays
 * perfect for reorder) and into each statement of a sequence, as TensorIR puts a predicate on
 * every block. It stops above lets and allocations, whose values must not be computed for the
 * iterations past the extent (they may load out of bounds).
 */
function guardInside(s: Stmt, cond: Expr): Stmt {
  if (s.kind === "for" && loadsIn(s.min).length === 0 && loadsIn(s.extent).length === 0)
    return { ...s, body: guardInside(s.body, cond) };
  if (s.kind === "seq") return seq(s.body.map((b) => guardInside(b, cond)));
  return ifThen(cond, s);
}

const describeExtent = (l: For): string => (l.extent.kind === "var" ? l.extent.name : "expression");

/** Loops given by name, checked distinct, in the order given. */
function distinctLoops(f: PrimFunc, names: readonly string[], primitive: string): For[] {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new ScheduleError(primitive, `loop ${n} is given twice`);
    seen.add(n);
  }
  return names.map((n) => loopPath(f, n, primitive).loop);
}

function fuse(f: PrimFunc, ...names: string[]): PrimitiveResult {
  const P = "fuse";
  if (names.length < 2) throw new ScheduleError(P, `give at least two loops to fuse, got ${names.length}`);
  const loops = distinctLoops(f, names, P);
  for (let k = 1; k < loops.length; k++) {
    const outer = loops[k - 1]!;
    if (outer.body !== loops[k]) {
      const inside = loopsUnder(outer.body).includes(loops[k]!);
      const between = outer.body.kind === "for" ? outer.body.loopVar.name : undefined;
      throw new ScheduleError(
        P,
        !inside
          ? `${names[k]} is not directly inside ${names[k - 1]}: fuse takes adjacent nested loops, outermost first`
          : between
            ? `loop ${between} stands between ${names[k - 1]} and ${names[k]}: fuse takes adjacent nested loops`
            : `${names[k]} is not the only statement in ${names[k - 1]} (its body is a ${outer.body.kind}): fuse needs perfectly nested loops`,
      );
    }
  }
  for (const l of loops)
    requireSerial(l, P, "fuse loops before binding, vectorizing, unrolling or parallelizing them");
  loops.forEach((l, k) => {
    for (const o of loops.slice(0, k))
      if (usesVar(l.min, o.loopVar) || usesVar(l.extent, o.loopVar))
        throw new ScheduleError(
          P,
          `the range of ${l.loopVar.name} depends on ${o.loopVar.name}: the nest is not rectangular`,
        );
  });
  const dt = loops[0]!.loopVar.dtype;
  const [fusedName] = freshNames(f, [`${names.join("_")}_fused`]);
  const fused = variable(fusedName!, dt);
  const extent = loops.reduce<Expr>((p, l) => mul(p, l.extent), constant(1, dt));
  // Recover each variable as a mixed-radix digit of the fused one, innermost digit first.
  const map = new Map<Var, Expr>();
  let rest: Expr = fused;
  for (let k = loops.length - 1; k > 0; k--) {
    const l = loops[k]!;
    map.set(l.loopVar, add(l.min, floormod(rest, l.extent)));
    rest = floordiv(rest, l.extent);
  }
  map.set(loops[0]!.loopVar, add(loops[0]!.min, rest));
  const body = substitute(loops[loops.length - 1]!.body, map);
  return {
    func: replaceStmt(f, loops[0]!, forLoop(fused, constant(0, dt), extent, body)),
    result: fusedName!,
  };
}

/** The loops from `outer` down to `inner` when each is the only statement of the one before. */
function perfectChain(outer: For, inner: For, primitive: string): For[] {
  const chain: For[] = [outer];
  let cur: Stmt = outer.body;
  while (chain[chain.length - 1] !== inner) {
    if (cur.kind !== "for")
      throw new ScheduleError(
        primitive,
        `the loops are not one perfect nest: a ${cur.kind} statement stands between ${chain[chain.length - 1]!.loopVar.name} and ${inner.loopVar.name}`,
      );
    chain.push(cur);
    cur = cur.body;
  }
  return chain;
}

/**
 * A trailing `{ reassociate: true }` lets reduction loops of one accumulator swap: the float sum is
 * then formed in another order (as TVM's reorder allows), which GEMV schedules need to put the
 * thread-parallel part of a reduction outside its serial part.
 */
function reorder(f: PrimFunc, ...args: (string | { reassociate?: boolean })[]): PrimitiveResult {
  const P = "reorder";
  const last = args[args.length - 1];
  const reassociate = typeof last === "object" && last !== null && last.reassociate === true;
  const names = args.filter((a): a is string => typeof a === "string");
  if (names.length < 2) throw new ScheduleError(P, `give at least two loops to reorder, got ${names.length}`);
  const given = distinctLoops(f, names, P);
  const paths = new Map(given.map((l) => [l, loopPath(f, l.loopVar.name, P).path]));
  const byDepth = [...given].sort((a, b) => paths.get(a)!.length - paths.get(b)!.length);
  for (let k = 1; k < byDepth.length; k++)
    if (!paths.get(byDepth[k]!)!.includes(byDepth[k - 1]!))
      throw new ScheduleError(
        P,
        `loops ${byDepth[k - 1]!.loopVar.name} and ${byDepth[k]!.loopVar.name} are not in one nest (neither is inside the other)`,
      );
  const chain = perfectChain(byDepth[0]!, byDepth[byDepth.length - 1]!, P);
  let next = 0;
  const order = chain.map((l) => (given.includes(l) ? given[next++]! : l));
  order.forEach((l, p) => {
    if (l.forKind === "vectorized" && chain[p] !== l)
      throw new ScheduleError(P, `loop ${l.loopVar.name} is vectorized and must stay innermost`);
    for (const inner of order.slice(p + 1))
      if (usesVar(l.min, inner.loopVar) || usesVar(l.extent, inner.loopVar))
        throw new ScheduleError(
          P,
          `the range of ${l.loopVar.name} depends on ${inner.loopVar.name}, so ${l.loopVar.name} cannot move outside it`,
        );
  });
  checkOrderPreservesValues(chain, order, reassociate);
  let body: Stmt = chain[chain.length - 1]!.body;
  for (let p = order.length - 1; p >= 0; p--) body = { ...order[p]!, body };
  return { func: replaceStmt(f, chain[0]!, body), result: null };
}

/**
 * Two accesses to the same element (one a store) in different iterations are ordered by the first
 * loop, outermost first, whose variable differs. Loops whose variables the indices pin cannot
 * differ; the order among the others must stay as it was, or the conflicting accesses swap.
 */
function checkOrderPreservesValues(chain: readonly For[], order: readonly For[], reassociate = false): void {
  const body = chain[chain.length - 1]!.body;
  const accesses = accessesIn(body);
  const local = allocatedIn(body);
  const spans = loopSpans([...chain, ...loopsUnder(body)]);
  accesses.forEach((w, wi) => {
    if (w.kind !== "store" || local.has(w.buffer)) return;
    // The store against itself first; each pair of stores once.
    const others = accesses.filter((a, ai) => a.buffer === w.buffer && !(a.kind === "store" && ai <= wi));
    [w, ...others].forEach((a) => {
      const pinned = pinnedVars(w, a, spans);
      const free = chain.filter((l) => !pinned.has(l.loopVar));
      for (let x = 0; x < free.length; x++)
        for (let y = x + 1; y < free.length; y++) {
          const [lx, ly] = [free[x]!, free[y]!];
          if (order.indexOf(lx) < order.indexOf(ly)) continue;
          const reducesOver = (l: For): boolean => !w.expanded.some((i) => dependsOn(i, l.loopVar));
          if (reassociate && reducesOver(lx) && reducesOver(ly) && isUpdate(w.node as Store)) continue;
          const reduction =
            reducesOver(lx) && reducesOver(ly)
              ? `; both are reduction loops for ${w.buffer.name}, which would accumulate in another order`
              : "";
          throw new ScheduleError(
            "reorder",
            `moving ${ly.loopVar.name} outside ${lx.loopVar.name} would change the values computed: ` +
              `${a === w ? `${describeAccess(w)} writes the same elements` : `${describeAccess(w)} and ${describeAccess(a)} touch the same elements`} ` +
              `in iterations that differ in both ${lx.loopVar.name} and ${ly.loopVar.name}${reduction}`,
          );
        }
    });
  });
}

registerPrimitives({ split, fuse, reorder });
export { split, fuse, reorder };
