/**
 * Access regions: which indices of a buffer a statement touches, per dimension, as [min, extent).
 *
 * Index expressions are bounded by interval arithmetic whose end points are affine forms
 * (integer combinations of variables plus a constant): loops inside the statement, and any loop
 * the caller asks to relax, range over their domains; every other variable (an enclosing loop's,
 * a symbol, a scalar parameter) stays symbolic, so a region is "per iteration" of the loops
 * around the statement. Whatever cannot be bounded this way falls back to the whole dimension,
 * which is always a correct (if loose) answer.
 */
import * as B from "../ir/build.ts";
import type { Buffer, Expr, For, Stmt, Var } from "../ir/nodes.ts";
import { collectVars } from "../ir/transform.ts";
import { loadsIn } from "./analysis.ts";

/** sum(coef * var) + c, with integer coefficients; terms keep their first-seen order. */
export interface Affine {
  readonly terms: ReadonlyMap<Var, number>;
  readonly c: number;
}

export interface Range {
  readonly min: Expr;
  readonly extent: Expr;
}
export type Region = readonly Range[];

/** Domains of the variables that range (loops); lets map variables to their values. */
export interface Env {
  readonly relax: ReadonlyMap<Var, Range>;
  readonly lets?: ReadonlyMap<Var, Expr>;
}

export const isIndexType = (e: Expr): boolean => e.dtype === "i32" || e.dtype === "i64" || e.dtype === "u32";

export const constAffine = (c: number): Affine => ({ terms: new Map(), c });

export function combine(a: Affine, b: Affine, scaleB = 1): Affine {
  const terms = new Map(a.terms);
  for (const [v, k] of b.terms) {
    const sum = (terms.get(v) ?? 0) + k * scaleB;
    if (sum === 0) terms.delete(v);
    else terms.set(v, sum);
  }
  return { terms, c: a.c + b.c * scaleB };
}
export const scale = (a: Affine, k: number): Affine =>
  k === 0 ? constAffine(0) : { terms: new Map([...a.terms].map(([v, c]) => [v, c * k])), c: a.c * k };

/** The constant value of an affine form without terms. */
export const constValue = (a: Affine): number | undefined => (a.terms.size === 0 ? a.c : undefined);
/** a - b when it is a constant. */
export const constDiff = (a: Affine, b: Affine): number | undefined => constValue(combine(a, b, -1));

/** The affine form of an integer expression, or undefined when it is not affine. */
export function toAffine(e: Expr): Affine | undefined {
  if (!isIndexType(e)) return undefined;
  switch (e.kind) {
    case "const":
      return Number.isInteger(e.value) ? constAffine(e.value) : undefined;
    case "var":
      return { terms: new Map([[e, 1]]), c: 0 };
    case "unary": {
      if (e.op !== "neg") return undefined;
      const a = toAffine(e.a);
      return a && scale(a, -1);
    }
    case "cast":
      return isIndexType(e.value) ? toAffine(e.value) : undefined;
    case "binary": {
      if (e.op !== "+" && e.op !== "-" && e.op !== "*") return undefined;
      const a = toAffine(e.a);
      const b = toAffine(e.b);
      if (!a || !b) return undefined;
      if (e.op === "+") return combine(a, b);
      if (e.op === "-") return combine(a, b, -1);
      const ka = constValue(a);
      const kb = constValue(b);
      if (kb !== undefined) return scale(a, kb);
      if (ka !== undefined) return scale(b, ka);
      return undefined;
    }
    default:
      return undefined;
  }
}

/** An affine form as an expression: `v * k + ... + c`. */
export function fromAffine(a: Affine): Expr {
  let out: Expr | undefined;
  for (const [v, k] of a.terms) {
    if (out === undefined) out = k === 1 ? v : B.mul(v, B.i32c(k));
    else {
      const term = Math.abs(k) === 1 ? v : B.mul(v, B.i32c(Math.abs(k)));
      out = k > 0 ? B.add(out, term) : B.sub(out, term);
    }
  }
  if (out === undefined) return B.i32c(a.c);
  return a.c > 0 ? B.add(out, B.i32c(a.c)) : a.c < 0 ? B.sub(out, B.i32c(-a.c)) : out;
}

/** Normalizes an affine index (`i + io * 3 - io * 3` becomes `i`); other expressions are kept. */
export function simplifyIndex(e: Expr): Expr {
  const a = toAffine(e);
  return a ? fromAffine(a) : e;
}

/** Inclusive bounds [lo, hi] of an expression whose end points are affine. */
export interface Interval {
  readonly lo: Affine;
  readonly hi: Affine;
}
/** Bounds where either end may be unknown (an upper bound needs no lower one). */
interface Half {
  readonly lo?: Affine | undefined;
  readonly hi?: Affine | undefined;
}

const lesser = (a: Affine | undefined, b: Affine | undefined): Affine | undefined => {
  const d = a && b && constDiff(a, b);
  return d === undefined ? undefined : d <= 0 ? a : b;
};
const greater = (a: Affine | undefined, b: Affine | undefined): Affine | undefined => {
  const d = a && b && constDiff(a, b);
  return d === undefined ? undefined : d >= 0 ? a : b;
};

function hull(a: Interval, b: Interval): Interval | undefined {
  const lo = lesser(a.lo, b.lo);
  const hi = greater(a.hi, b.hi);
  return lo && hi ? { lo, hi } : undefined;
}

const point = (a: Affine): Half => ({ lo: a, hi: a });
const constOfHalf = (h: Half): number | undefined => {
  const lo = h.lo && constValue(h.lo);
  return lo !== undefined && h.hi && constValue(h.hi) === lo ? lo : undefined;
};
const sum = (a: Affine | undefined, b: Affine | undefined, k = 1): Affine | undefined =>
  a && b ? combine(a, b, k) : undefined;

/** Interval arithmetic over index expressions; undefined when an operation cannot be bounded. */
export function bounds(e: Expr, env: Env): Interval | undefined {
  const h = half(e, env);
  return h.lo && h.hi ? { lo: h.lo, hi: h.hi } : undefined;
}

function half(e: Expr, env: Env): Half {
  if (!isIndexType(e)) return {};
  switch (e.kind) {
    case "const":
      return Number.isInteger(e.value) ? point(constAffine(e.value)) : {};
    case "var": {
      const r = env.relax.get(e);
      if (r) return { lo: half(r.min, env).lo, hi: half(B.sub(B.add(r.min, r.extent), B.i32c(1)), env).hi };
      const value = env.lets?.get(e);
      if (value) return half(value, env);
      return point({ terms: new Map([[e, 1]]), c: 0 });
    }
    case "cast":
      return isIndexType(e.value) ? half(e.value, env) : {};
    case "unary": {
      if (e.op !== "neg") return {};
      const a = half(e.a, env);
      return { lo: a.hi && scale(a.hi, -1), hi: a.lo && scale(a.lo, -1) };
    }
    case "select": {
      const t = half(e.t, env);
      const f = half(e.f, env);
      return { lo: lesser(t.lo, f.lo), hi: greater(t.hi, f.hi) };
    }
    case "binary":
      return binaryHalf(e.op, half(e.a, env), half(e.b, env));
    default:
      return {};
  }
}

function binaryHalf(op: string, a: Half, b: Half): Half {
  switch (op) {
    case "+":
      return { lo: sum(a.lo, b.lo), hi: sum(a.hi, b.hi) };
    case "-":
      return { lo: sum(a.lo, b.hi, -1), hi: sum(a.hi, b.lo, -1) };
    case "*": {
      const kb = constOfHalf(b);
      const ka = constOfHalf(a);
      const [x, k] = kb !== undefined ? [a, kb] : ka !== undefined ? [b, ka] : [undefined, 0];
      if (x) {
        const [lo, hi] = k >= 0 ? [x.lo, x.hi] : [x.hi, x.lo];
        return { lo: lo && scale(lo, k), hi: hi && scale(hi, k) };
      }
      return numeric(a, b, (p, q) => p * q);
    }
    case "floordiv":
    case "/": {
      const d = constOfHalf(b);
      if (d === undefined || d <= 0) return {};
      const lo = a.lo && constValue(a.lo);
      const hi = a.hi && constValue(a.hi);
      if (op === "/" && (lo === undefined || lo < 0)) return {};
      return {
        lo: lo === undefined ? undefined : constAffine(Math.floor(lo / d)),
        hi: hi === undefined ? undefined : constAffine(Math.floor(hi / d)),
      };
    }
    case "floormod":
    case "%": {
      const d = constOfHalf(b);
      if (d === undefined || d <= 0) return {};
      const lo = a.lo && constValue(a.lo);
      const hi = a.hi && constValue(a.hi);
      if (op === "%" && (lo === undefined || lo < 0)) return {};
      if (lo !== undefined && hi !== undefined && Math.floor(lo / d) === Math.floor(hi / d))
        return { lo: constAffine(lo - Math.floor(lo / d) * d), hi: constAffine(hi - Math.floor(hi / d) * d) };
      return { lo: constAffine(0), hi: constAffine(d - 1) };
    }
    case ">>":
    case "<<": {
      // A non-negative value shifted by a constant: floor division or multiplication by 2^d.
      const d = constOfHalf(b);
      const lo = a.lo && constValue(a.lo);
      const hi = a.hi && constValue(a.hi);
      if (d === undefined || d < 0 || d > 30 || lo === undefined || hi === undefined || lo < 0) return {};
      const f = (v: number) => (op === ">>" ? Math.floor(v / 2 ** d) : v * 2 ** d);
      return { lo: constAffine(f(lo)), hi: constAffine(f(hi)) };
    }
    case "&": {
      // Masked by a non-negative constant: within [0, mask] whatever the other operand.
      const m = constOfHalf(b) ?? constOfHalf(a);
      return m !== undefined && m >= 0 ? { lo: constAffine(0), hi: constAffine(m) } : {};
    }
    case "min":
      // Either upper bound bounds the minimum; the lower bound needs the smaller of the two.
      return { lo: lesser(a.lo, b.lo), hi: lesser(a.hi, b.hi) ?? a.hi ?? b.hi };
    case "max":
      return { lo: greater(a.lo, b.lo) ?? a.lo ?? b.lo, hi: greater(a.hi, b.hi) };
    default:
      return {};
  }
}

function numeric(a: Half, b: Half, f: (p: number, q: number) => number): Half {
  const xs = [a.lo, a.hi].map((x) => x && constValue(x));
  const ys = [b.lo, b.hi].map((x) => x && constValue(x));
  if ([...xs, ...ys].some((x) => x === undefined)) return {};
  const all = xs.flatMap((x) => ys.map((y) => f(x!, y!)));
  return { lo: constAffine(Math.min(...all)), hi: constAffine(Math.max(...all)) };
}

/** The domains of some loops, for Env.relax. */
export function loopRanges(loops: Iterable<For>): Map<Var, Range> {
  const m = new Map<Var, Range>();
  for (const l of loops) m.set(l.loopVar, { min: l.min, extent: l.extent });
  return m;
}

/** Loops bound to threadIdx: their threads share a "shared" buffer, so its region spans them. */
export function threadLoops(loops: readonly For[], scope: Buffer["scope"]): For[] {
  return scope === "shared"
    ? loops.filter((l) => l.forKind === "thread" && l.thread?.startsWith("threadIdx"))
    : [];
}

export type Access = "read" | "write" | "any";

/** One access, with the loops (outermost first) and lets around it inside the analysed statement. */
export interface AccessSite {
  readonly kind: "load" | "store";
  readonly indices: readonly Expr[];
  readonly loops: For[];
  readonly lets: Map<Var, Expr>;
  /** The stored value, for stores. */
  readonly value?: Expr;
}

/** Every index tuple of `buf` under `s`, with the loops and lets met on the way. */
export function accessesOf(s: Stmt, buf: Buffer, access: Access): AccessSite[] {
  const out: AccessSite[] = [];
  const loops: For[] = [];
  const lets = new Map<Var, Expr>();
  const site = (kind: AccessSite["kind"], indices: readonly Expr[], value?: Expr): AccessSite => ({
    kind,
    indices,
    loops: [...loops],
    lets: new Map(lets),
    ...(value ? { value } : {}),
  });
  const visitExpr = (e: Expr): void => {
    if (access !== "write")
      for (const l of loadsIn(e)) if (l.buffer === buf) out.push(site("load", l.indices));
  };
  const visit = (st: Stmt): void => {
    switch (st.kind) {
      case "for":
        [st.min, st.extent].forEach(visitExpr);
        loops.push(st);
        visit(st.body);
        loops.pop();
        return;
      case "let":
        visitExpr(st.value);
        lets.set(st.v, st.value);
        visit(st.body);
        lets.delete(st.v);
        return;
      case "store":
        [...st.indices, st.value].forEach(visitExpr);
        if (st.buffer === buf && access !== "read") out.push(site("store", st.indices, st.value));
        return;
      case "if":
        visitExpr(st.cond);
        [st.then, ...(st.else ? [st.else] : [])].forEach(visit);
        return;
      case "seq":
        st.body.forEach(visit);
        return;
      case "block":
      case "allocate":
        visit(st.body);
        return;
      case "atomic": {
        [...st.indices, st.value, ...(st.result?.indices ?? [])].forEach(visitExpr);
        const target = B.load(st.buffer, st.indices);
        if (st.buffer === buf && access !== "write") out.push(site("load", st.indices));
        if (st.buffer === buf && access !== "read")
          out.push(site("store", st.indices, B.add(target, st.value)));
        if (st.result?.buffer === buf && access !== "read")
          out.push(site("store", st.result.indices, target));
        return;
      }
      case "barrier":
      case "prefetch":
        return;
    }
  };
  visit(s);
  return out;
}

/** The whole of a buffer: [0, shape). */
export const wholeRegion = (buf: Buffer): Region => buf.shape.map((d) => ({ min: B.i32c(0), extent: d }));

/**
 * Per-dimension bounds of the indices `s` touches `buf` with, loops inside `s` and `relax` ranging
 * over their domains. Undefined where `s` does not touch it; a dimension that cannot be bounded
 * (or whose accesses' bounds cannot be ordered) is undefined in the array.
 */
export function accessIntervals(
  s: Stmt,
  buf: Buffer,
  access: Access,
  relax: ReadonlyMap<Var, Range> = new Map(),
  lets: ReadonlyMap<Var, Expr> = new Map(),
): (Interval | undefined)[] | undefined {
  const accesses = accessesOf(s, buf, access);
  if (accesses.length === 0) return undefined;
  const dims: (Interval | undefined | null)[] = buf.shape.map(() => null);
  for (const a of accesses) {
    const env: Env = {
      relax: new Map([...relax, ...loopRanges(a.loops)]),
      lets: new Map([...lets, ...a.lets]),
    };
    a.indices.forEach((idx, d) => {
      const prev = dims[d];
      if (prev === undefined) return;
      const b = bounds(idx, env);
      dims[d] = b === undefined ? undefined : prev === null ? b : hull(prev, b);
    });
  }
  return dims.map((d) => d ?? undefined);
}

/** The region `s` touches: [min, extent) per dimension, the whole dimension where unknown. */
export function accessRegion(
  s: Stmt,
  buf: Buffer,
  access: Access,
  relax: ReadonlyMap<Var, Range> = new Map(),
  lets: ReadonlyMap<Var, Expr> = new Map(),
): Region | undefined {
  const dims = accessIntervals(s, buf, access, relax, lets);
  if (!dims) return undefined;
  return dims.map((iv, d) => (iv ? intervalToRange(clampTo(iv, buf.shape[d]!)) : wholeRegion(buf)[d]!));
}

/** Tightens constant end points to the dimension [0, extent). */
function clampTo(iv: Interval, extent: Expr): Interval {
  const lo = constValue(iv.lo);
  const hi = constValue(iv.hi);
  const n = extent.kind === "const" ? extent.value : undefined;
  return {
    lo: lo !== undefined && lo < 0 ? constAffine(0) : iv.lo,
    hi: hi !== undefined && n !== undefined && hi > n - 1 ? constAffine(n - 1) : iv.hi,
  };
}

export const intervalToRange = (iv: Interval): Range => ({
  min: fromAffine(iv.lo),
  extent: fromAffine(combine(combine(iv.hi, iv.lo, -1), constAffine(1))),
});

/** True when a <= b for every value of the relaxed variables (others must cancel out). */
export function provablyLE(a: Expr, b: Expr, env: Env): boolean {
  const iv = half(B.sub(a, b), env);
  const hi = iv.hi && constValue(iv.hi);
  return hi !== undefined && hi <= 0;
}

/** True when no variable of `e` is in `vars` (an extent usable where they are not bound). */
export const freeOf = (e: Expr, vars: ReadonlySet<Var>): boolean =>
  [...collectVars(e)].every((v) => !vars.has(v));
