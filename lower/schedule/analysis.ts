/**
 * Analyses the schedule primitives share: where a statement reads and writes, which loops carry a
 * reduction, and whether two iterations of a loop can touch the same element of a buffer (the
 * pinning below; dependence.ts pairs a loop's accesses with it).
 *
 * The dependence test is conservative and exact only where it can prove things: an index
 * dimension that two accesses share, written as an affine sum of loop variables whose ranges nest
 * like the digits of a mixed-radix number (what `split` produces, `i_0 * 4 + i_1` with
 * `i_1 < 4`), pins those variables: equal indices imply equal variables. Equal
 * `floordiv(x, c)` and `floormod(x, c)` (what `fuse` produces) pin x. Anything else (loads in
 * indices, other non-affine arithmetic, digits under a symbolic extent) pins nothing.
 */
import type { Atomic, Block, Buffer, Expr, For, Load, Node, Stmt, Store, Var } from "../ir/nodes.ts";
import { isInt } from "../../dsl/dtypes.ts";
import { sameExpr, sameIndices } from "../ir/equal.ts";
import { printExpr } from "../ir/printer.ts";
import { someNode, substitute, walk } from "../ir/transform.ts";
import * as B from "../ir/build.ts";

/** Annotation `bind` puts on a reduction loop bound to threadIdx: its value names the buffers. */
export const CROSS_THREAD_REDUCTION = "cross_thread_reduction";

function collect<T extends Node>(n: Node, pick: (x: Node) => x is T): T[] {
  const out: T[] = [];
  walk(n, (x) => {
    if (pick(x)) out.push(x);
  });
  return out;
}

export const storesIn = (s: Stmt): Store[] => collect(s, (x): x is Store => x.kind === "store");
export const loadsIn = (n: Node): Load[] => collect(n, (x): x is Load => x.kind === "load");
/** Every block in s, s included, outermost first. */
export const blocksUnder = (s: Stmt): Block[] => collect(s, (x): x is Block => x.kind === "block");
/** Every loop in s, s included, outermost first. */
export const loopsUnder = (s: Stmt): For[] => collect(s, (x): x is For => x.kind === "for");

export function allocatedIn(s: Stmt): Set<Buffer> {
  const out = new Set<Buffer>();
  walk(s, (x) => {
    if (x.kind === "allocate") out.add(x.buffer);
  });
  return out;
}

/** The `let` bindings in s, each value with the earlier bindings already substituted. */
export function letsIn(s: Stmt): Map<Var, Expr> {
  const out = new Map<Var, Expr>();
  walk(s, (x) => {
    if (x.kind === "let") out.set(x.v, substitute(x.value, out));
  });
  return out;
}

/** e with the variables bound by `lets` (from letsIn) replaced by their values. */
export const expandLets = (e: Expr, lets: ReadonlyMap<Var, Expr>): Expr => substitute(e, lets);

/** Whether e uses v, directly or through a let-bound variable in `lets` (from letsIn). */
export function dependsOn(e: Expr, v: Var, lets: ReadonlyMap<Var, Expr> = new Map()): boolean {
  return someNode(e, (x) => x === v || (x.kind === "var" && lets.has(x) && dependsOn(lets.get(x)!, v)));
}

/** One load or store, with the enclosing block and its indices with lets expanded. */
export interface Access {
  readonly kind: "load" | "store";
  readonly buffer: Buffer;
  readonly node: Load | Store;
  readonly block: string | undefined;
  /** The indices with the lets bound inside the analysed statement substituted. */
  readonly expanded: readonly Expr[];
  /** The atomic this access is part of (its element's read and write, or its result's store). */
  readonly atomic?: Atomic;
}

/** Every load and store in s, in program order (a store's indices and value before the store). */
export function accessesIn(s: Stmt): Access[] {
  const lets = letsIn(s);
  const out: Access[] = [];
  const exprs = (e: Expr, block: string | undefined): void =>
    walk(e, (x) => {
      if (x.kind === "load")
        out.push({
          kind: "load",
          buffer: x.buffer,
          node: x,
          block,
          expanded: x.indices.map((i) => expandLets(i, lets)),
        });
    });
  const visit = (st: Stmt, block: string | undefined): void => {
    switch (st.kind) {
      case "for":
        exprs(st.min, block);
        exprs(st.extent, block);
        return visit(st.body, block);
      case "block":
        return visit(st.body, st.name);
      case "store":
        st.indices.forEach((i) => exprs(i, block));
        exprs(st.value, block);
        out.push({
          kind: "store",
          buffer: st.buffer,
          node: st,
          block,
          expanded: st.indices.map((i) => expandLets(i, lets)),
        });
        return;
      case "allocate":
        return visit(st.body, block);
      case "if":
        exprs(st.cond, block);
        visit(st.then, block);
        if (st.else) visit(st.else, block);
        return;
      case "seq":
        return st.body.forEach((b) => visit(b, block));
      case "let":
        exprs(st.value, block);
        return visit(st.body, block);
      // An atomic reads and writes its element and writes its result, as a load and stores would.
      case "atomic": {
        st.indices.forEach((i) => exprs(i, block));
        exprs(st.value, block);
        const target = B.load(st.buffer, st.indices);
        const writes = [B.store(st.buffer, st.indices, B.add(target, st.value))];
        if (st.result) {
          st.result.indices.forEach((i) => exprs(i, block));
          writes.push(B.store(st.result.buffer, st.result.indices, target));
        }
        out.push({
          kind: "load",
          buffer: st.buffer,
          node: target,
          block,
          expanded: st.indices.map((i) => expandLets(i, lets)),
          atomic: st,
        });
        for (const w of writes)
          out.push({
            kind: "store",
            buffer: w.buffer,
            node: w,
            block,
            expanded: w.indices.map((i) => expandLets(i, lets)),
            atomic: st,
          });
        return;
      }
      // A prefetch changes nothing a schedule's legality depends on.
      case "barrier":
      case "prefetch":
        return;
    }
  };
  visit(s, undefined);
  return out;
}

/** `y[i][j] (block "y")`: how messages name an access. */
export function describeAccess(a: Access): string {
  const text = `${a.buffer.name}${a.node.indices.map((i) => `[${printExpr(i)}]`).join("")}`;
  return a.block === undefined ? text : `${text} (block ${JSON.stringify(a.block)})`;
}

/**
 * The stores under `loop` into a location that does not depend on its variable, into a buffer
 * that lives outside the loop (a param, or allocated around it): every iteration updates the
 * same element, so the loop is a reduction loop for them.
 */
export function reductionStores(loop: For): Store[] {
  const inner = allocatedIn(loop.body);
  const lets = letsIn(loop.body);
  return storesIn(loop.body).filter(
    (st) => !inner.has(st.buffer) && !st.indices.some((i) => dependsOn(i, loop.loopVar, lets)),
  );
}

/**
 * Whether a store updates the element it writes (`y[i] = y[i] + x`, `m[0] = max(m[0], x)`): the
 * shape of a reduction, as opposed to an overwrite whose last write wins.
 */
export function isUpdate(st: Store, lets: ReadonlyMap<Var, Expr> = new Map()): boolean {
  const at = st.indices.map((i) => expandLets(i, lets));
  return loadsIn(expandLets(st.value, lets)).some(
    (l) =>
      l.buffer === st.buffer &&
      sameIndices(
        l.indices.map((i) => expandLets(i, lets)),
        at,
      ),
  );
}

/** The reduction stores under `loop` that update their element (see isUpdate). */
export function reductionUpdates(loop: For): Store[] {
  const lets = letsIn(loop.body);
  return reductionStores(loop).filter((st) => isUpdate(st, lets));
}

/** Whether `loop` is a reduction loop for `store` (one of the stores under it), or for any store. */
export function isReductionLoop(loop: For, store?: Store): boolean {
  const stores = reductionStores(loop);
  return store ? stores.includes(store) : stores.length > 0;
}

/**
 * An index expression as an integer affine sum of atoms: variables, and whatever is not affine
 * (floordiv, floormod, loads, ...) kept whole, so `4 * floormod(f, n) + j` has two terms.
 */
export interface Linear {
  readonly terms: readonly { readonly atom: Expr; readonly coef: number }[];
  readonly constant: number;
}

export function linearize(e: Expr): Linear {
  const scale = (l: Linear, k: number): Linear => ({
    terms: k === 0 ? [] : l.terms.map((t) => ({ atom: t.atom, coef: t.coef * k })),
    constant: l.constant * k,
  });
  const plus = (a: Linear, b: Linear): Linear => {
    const terms = [...a.terms];
    for (const t of b.terms) {
      const k = terms.findIndex((u) => sameExpr(u.atom, t.atom));
      if (k < 0) terms.push(t);
      else terms[k] = { atom: t.atom, coef: terms[k]!.coef + t.coef };
    }
    return { terms: terms.filter((t) => t.coef !== 0), constant: a.constant + b.constant };
  };
  const atom: Linear = { terms: [{ atom: e, coef: 1 }], constant: 0 };
  if (e.kind === "const" && isInt(e.dtype)) return { terms: [], constant: e.value };
  if (e.kind === "cast" && isInt(e.dtype) && isInt(e.value.dtype)) return linearize(e.value);
  if (e.kind === "unary" && e.op === "neg") return scale(linearize(e.a), -1);
  if (e.kind !== "binary" || !isInt(e.dtype)) return atom;
  if (e.op !== "+" && e.op !== "-" && e.op !== "*") return atom;
  const a = linearize(e.a);
  const b = linearize(e.b);
  if (e.op === "+") return plus(a, b);
  if (e.op === "-") return plus(a, scale(b, -1));
  if (a.terms.length === 0) return scale(b, a.constant);
  if (b.terms.length === 0) return scale(a, b.constant);
  return atom;
}

/** The coefficient of v in e when e is affine in v (lets already expanded), else undefined. */
export function affineCoefficient(e: Expr, v: Var): number | undefined {
  let coef = 0;
  for (const t of linearize(e).terms) {
    if (t.atom === v) coef += t.coef;
    else if (dependsOn(t.atom, v)) return undefined;
  }
  return coef;
}

/**
 * How far each variable can differ between the two iterations compared (extent - 1, Infinity
 * when the extent is symbolic); variables absent from the map have the same value in both.
 */
/**
 * How far each varying loop variable can move (its extent - 1); `zeroBased` holds the ones that
 * start at 0, whose quotients and masks then have exact spans (v >> 2 over 0..31 moves by 7).
 */
export interface Spans extends ReadonlyMap<Var, number> {
  readonly zeroBased?: ReadonlySet<Var>;
}

export function loopSpans(loops: readonly For[]): Map<Var, number> & Spans {
  const spans = new Map(
    loops.map((l) => [l.loopVar, l.extent.kind === "const" ? Math.max(0, l.extent.value - 1) : Infinity]),
  );
  const zeroBased = new Set(
    loops.filter((l) => l.min.kind === "const" && l.min.value === 0).map((l) => l.loopVar),
  );
  return Object.assign(spans, { zeroBased });
}

/** Whether e >= 0 whenever its loops run and its smallest value is 0 (sums of zero-based loop variables). */
function startsAtZero(e: Expr, spans: Spans): boolean {
  const l = linearize(e);
  return (
    l.constant === 0 &&
    l.terms.every((t) => t.coef > 0 && t.atom.kind === "var" && (spans.zeroBased?.has(t.atom) ?? false))
  );
}

/** How far an expression can differ between the two iterations (0: it cannot). */
function spanOf(e: Expr, spans: Spans): number {
  if (e.kind === "var") return spans.get(e) ?? 0;
  if (e.kind === "const") return 0;
  const l = linearize(e);
  if (l.terms.length !== 1 || l.terms[0]!.atom !== e)
    return l.terms.reduce((sum, t) => sum + Math.abs(t.coef) * spanOf(t.atom, spans), 0);
  let varies = false;
  walk(e, (x) => {
    if (x.kind === "load" || (x.kind === "var" && spans.has(x))) varies = true;
  });
  if (!varies) return 0;
  if (e.kind !== "binary" || spanOf(e.b, spans) !== 0) return Infinity;
  const c = e.b.kind === "const" ? e.b.value : undefined;
  // Shifts by a constant divide by a power of two (rounding down, as floordiv).
  const divisor =
    e.op === "floordiv" || e.op === "/"
      ? c
      : e.op === ">>" && c !== undefined && c >= 0 && c < 31
        ? 2 ** c
        : undefined;
  if (divisor !== undefined && divisor > 0) {
    const inner = spanOf(e.a, spans);
    // From 0 the quotient moves by exactly floor(span / c); elsewhere a window may straddle one more step.
    return startsAtZero(e.a, spans) ? Math.floor(inner / divisor) : Math.floor(inner / divisor) + 1;
  }
  if (e.op === "floordiv") return spanOf(e.a, spans);
  if (e.op === "floormod") return c && c > 0 ? c - 1 : Infinity;
  if (e.op === "%" && c && c > 0 && startsAtZero(e.a, spans)) return c - 1;
  // x & m for a constant mask m >= 0 lies in [0, m].
  if (e.op === "&" && c !== undefined && c >= 0) return c;
  return Infinity;
}

/**
 * The atoms of one index value that equal values force to be equal (mixed-radix argument: when
 * each coefficient exceeds what all smaller terms can add up to, the largest differing term could
 * not be balanced by the smaller ones).
 */
function pinnedAtoms(e: Expr, spans: Spans): Expr[] {
  const terms = linearize(e)
    .terms.map((t) => ({ atom: t.atom, c: Math.abs(t.coef), span: spanOf(t.atom, spans) }))
    .filter((t) => t.span > 0)
    .sort((x, y) => x.c - y.c);
  let reach = 0;
  let lastFail = -1;
  terms.forEach((t, k) => {
    if (t.c <= reach) lastFail = k;
    reach += t.c * t.span;
  });
  return terms.filter((_, k) => k > lastFail).map((t) => t.atom);
}

/**
 * A quotient or remainder atom as (x, divisor, rounding, part): x = q * d + r holds for the pair
 * floordiv / floormod (and x >> s / x & (2^s - 1), the same for d = 2^s) and for the truncating
 * pair / and %, so equal quotient and remainder force equal x.
 */
interface DivPart {
  readonly x: Expr;
  readonly d: Expr;
  readonly rounding: "floor" | "trunc";
  readonly part: "quotient" | "remainder";
}
/** The other half of a quotient or remainder: x % d for x / d, floordiv(x, d) for floormod(x, d). */
function partnerOf(d: DivPart): Expr {
  const op =
    d.rounding === "trunc"
      ? d.part === "quotient"
        ? "%"
        : "/"
      : d.part === "quotient"
        ? "floormod"
        : "floordiv";
  return B.binary(op, d.x, d.d);
}

function divPart(e: Expr): DivPart | undefined {
  if (e.kind !== "binary" || !isInt(e.dtype)) return undefined;
  const c = e.b.kind === "const" ? e.b.value : undefined;
  const of = (d: Expr, rounding: DivPart["rounding"], part: DivPart["part"]): DivPart => ({
    x: e.a,
    d,
    rounding,
    part,
  });
  switch (e.op) {
    case "floordiv":
      return of(e.b, "floor", "quotient");
    case "floormod":
      return of(e.b, "floor", "remainder");
    case "/":
      return of(e.b, "trunc", "quotient");
    case "%":
      return of(e.b, "trunc", "remainder");
    case ">>":
      return c !== undefined && c >= 0 && c < 31 ? of(B.i32c(2 ** c), "floor", "quotient") : undefined;
    case "&":
      return c !== undefined && c >= 0 && ((c + 1) & c) === 0
        ? of(B.i32c(c + 1), "floor", "remainder")
        : undefined;
    default:
      return undefined;
  }
}

/** x as base >> bits through a chain of constant right shifts and floordivs by powers of two. */
function shiftOf(x: Expr): { base: Expr; bits: number } {
  if (x.kind === "binary" && x.b.kind === "const" && isInt(x.dtype)) {
    const c = x.b.value;
    const bits =
      x.op === ">>" && c >= 0 && c < 31
        ? c
        : x.op === "floordiv" && c > 0 && (c & (c - 1)) === 0
          ? Math.log2(c)
          : undefined;
    if (bits !== undefined) {
      const inner = shiftOf(x.a);
      return { base: inner.base, bits: inner.bits + bits };
    }
  }
  return { base: x, bits: 0 };
}

/**
 * The dividend a quotient q and a remainder r determine together, if they are the two halves of
 * one division: the same x and divisor, or, with powers of two, r = (base >> s) mod 2^a and
 * q = base >> (s + a), which pin base >> s (the digits of a bit field taken apart by shifts and
 * masks, as in c >> 5, (c >> 3) & 3, (c >> 2) & 1, c & 3).
 */
function pairedDividend(q: DivPart, r: DivPart): Expr | undefined {
  if (q.rounding !== r.rounding) return undefined;
  if (sameExpr(q.x, r.x) && sameExpr(q.d, r.d)) return r.x;
  if (q.rounding !== "floor" || q.d.kind !== "const" || r.d.kind !== "const") return undefined;
  const [qs, rs] = [shiftOf(q.x), shiftOf(r.x)];
  const [qBits, rBits] = [qs.bits + Math.log2(q.d.value), rs.bits + Math.log2(r.d.value)];
  if (!Number.isInteger(qBits) || !Number.isInteger(rBits) || qBits !== rBits) return undefined;
  return sameExpr(qs.base, rs.base) ? r.x : undefined;
}

/**
 * The varying variables (keys of `spans`) that must be equal whenever accesses a and b touch the
 * same element: two iterations that differ in any other varying variable may conflict. Dimensions
 * both index with the same expression are equal; equal atoms floordiv(x, c) and floormod(x, c)
 * make x equal (x = floordiv(x, c) * c + floormod(x, c)), which is how fused loops are recovered.
 */
export function pinnedVars(a: Access, b: Access, spans: Spans): Set<Var> {
  // A loop of one iteration cannot differ.
  const out = new Set([...spans].filter(([, span]) => span === 0).map(([v]) => v));
  if (a.expanded.length !== b.expanded.length) return out;
  const queue = a.expanded.filter((x, k) => sameExpr(x, b.expanded[k]!));
  const atoms: Expr[] = [];
  const seen: Expr[] = [];
  // Equal in both accesses: constant over the varying loops, known equal (a value or a pinned
  // atom), or a mask or shift of one.
  const knownEqual = (e: Expr): boolean =>
    spanOf(e, spans) === 0 ||
    [...seen, ...queue, ...atoms].some((x) => sameExpr(x, e)) ||
    (e.kind === "binary" && (e.op === "&" || e.op === ">>") && e.b.kind === "const" && knownEqual(e.a));
  // x ^ y with y equal makes x equal (a swizzle: a column exchanged by a function of its row); y
  // may be known only once another dimension (the row) has been taken apart: kept until then.
  const xors: Expr[] = [];
  const resolveXors = () => {
    for (let k = xors.length - 1; k >= 0; k--) {
      const x = xors[k]! as Expr & { kind: "binary" };
      const other = knownEqual(x.b) ? x.a : knownEqual(x.a) ? x.b : undefined;
      if (!other) continue;
      queue.push(other);
      xors.splice(k, 1);
    }
  };
  for (resolveXors(); queue.length; resolveXors()) {
    const value = queue.pop()!;
    if (seen.some((x) => sameExpr(x, value))) continue;
    seen.push(value);
    for (const atom of pinnedAtoms(value, spans)) {
      if (atom.kind === "var") out.add(atom);
      if (atoms.some((x) => sameExpr(x, atom))) continue;
      atoms.push(atom);
      if (atom.kind === "binary" && atom.op === "^") xors.push(atom);
      const d = divPart(atom);
      if (!d || spanOf(d.d, spans) !== 0) continue;
      // The partner is equal too: constant over the varying loops, or pinned itself.
      if (spanOf(partnerOf(d), spans) === 0) queue.push(d.x);
      else
        for (const y of atoms) {
          const p = divPart(y);
          if (!p || p.part === d.part) continue;
          const x = d.part === "quotient" ? pairedDividend(d, p) : pairedDividend(p, d);
          if (x) queue.push(x);
        }
    }
  }
  for (const [v] of spans) if (!out.has(v) && tilePinned(a.expanded, b.expanded, v, spans)) out.add(v);
  return out;
}

/**
 * The range of an atom over the whole range of its loops, where known: zero-based loop variables
 * of constant extent, constants, masks by a constant (x & m is in [0, m]), and shifts of a
 * non-negative value.
 */
function atomRange(e: Expr, spans: Spans): readonly [number, number] | undefined {
  if (e.kind === "const") return [e.value, e.value];
  if (e.kind === "var") {
    const span = spans.get(e);
    return span !== undefined && Number.isFinite(span) && spans.zeroBased?.has(e) ? [0, span] : undefined;
  }
  if (e.kind !== "binary" || e.b.kind !== "const") return undefined;
  const c = e.b.value;
  if (e.op === "&" && c >= 0) return [0, c];
  if (e.op === ">>" && c >= 0 && c < 31) {
    const r = linearRange(linearize(e.a), spans);
    return r && r[0] >= 0 ? [Math.floor(r[0] / 2 ** c), Math.floor(r[1] / 2 ** c)] : undefined;
  }
  return undefined;
}

function linearRange(l: Linear, spans: Spans): readonly [number, number] | undefined {
  let lo = l.constant;
  let hi = l.constant;
  for (const t of l.terms) {
    const r = atomRange(t.atom, spans);
    if (!r) return undefined;
    lo += Math.min(t.coef * r[0], t.coef * r[1]);
    hi += Math.max(t.coef * r[0], t.coef * r[1]);
  }
  return [lo, hi];
}

/**
 * The tile test, for two accesses whose other terms need not match (an element written by two
 * nests with loops of their own, say a guarded and an unguarded copy of one epilogue): in some
 * dimension both indices are c v plus a rest, both rests within one window [L, L + |c|), so equal
 * indices force equal v (c v + r = c v' + r' with |r - r'| < |c|).
 */
function tilePinned(a: readonly Expr[], b: readonly Expr[], v: Var, spans: Spans): boolean {
  if (a.length !== b.length) return false;
  const split = (e: Expr) => {
    const l = linearize(e);
    const own = l.terms.filter((t) => t.atom === v);
    const rest = l.terms.filter((t) => t.atom !== v);
    if (own.length !== 1 || rest.some((t) => dependsOn(t.atom, v))) return undefined;
    return { coef: own[0]!.coef, range: linearRange({ terms: rest, constant: l.constant }, spans) };
  };
  return a.some((x, k) => {
    const p = split(x);
    const q = split(b[k]!);
    if (!p?.range || !q?.range || p.coef !== q.coef) return false;
    return Math.max(p.range[1], q.range[1]) - Math.min(p.range[0], q.range[0]) < Math.abs(p.coef);
  });
}

const gcd = (a: number, b: number): number => (b === 0 ? Math.abs(a) : gcd(b, a % b));

/**
 * Whether two accesses can never touch the same element, by one of two tests on some dimension:
 * - the GCD test: two affine indices whose variable terms are all multiples of g can only meet
 *   when their constants agree modulo g, whatever the variables are (y[2i] and y[2i' + 1]);
 * - the range test (given the spans of the loops whose iterations differ): indices with the same
 *   terms differ by their constants plus the terms' changes, at most sum |coef| * span; constants
 *   further apart never meet (y[i] and y[i' + 64] for i, i' < 64).
 */
export function neverEqual(a: readonly Expr[], b: readonly Expr[], spans?: Spans): boolean {
  if (a.length !== b.length) return false;
  return a.some((x, k) => {
    const la = linearize(x);
    const lb = linearize(b[k]!);
    const g = [...la.terms, ...lb.terms].reduce((acc, t) => gcd(acc, Math.round(t.coef)), 0);
    const diff = la.constant - lb.constant;
    if (g > 1 && Number.isInteger(diff) && diff % g !== 0) return true;
    if (!spans || la.terms.length !== lb.terms.length) return false;
    let reach = 0;
    for (const t of la.terms) {
      const u = lb.terms.find((v) => sameExpr(v.atom, t.atom));
      if (!u || u.coef !== t.coef) return false;
      reach += Math.abs(t.coef) * spanOf(t.atom, spans);
    }
    return Math.abs(diff) > reach;
  });
}
