/**
 * Pass `simplify`: integer constant folding, identities (x * 1, x + 0, ...), floordiv/floormod
 * and comparisons decided by value ranges, and dead code (empty or zero-trip loops, `if (true)`,
 * single-iteration loops, unused lets and allocations).
 * f32 and u32 arithmetic on constants is folded too (foldF32U32).
 *
 * Ranges come from loop bounds, thread and block indices (the launch), guards on the path
 * (`if (v < e)` bounds v inside its branch) and symbols (shape dimensions are >= 0). Only i32
 * and bool arithmetic is folded: float folding would have to reproduce f16/bf16 rounding, and
 * the device does that arithmetic at run time anyway. The one float identity used, x * 1, is
 * exact for every x.
 */
import type { Binary, Expr, For, LaunchConfig, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import {
  add,
  binary,
  constant,
  isConst,
  isNop,
  isWarpCollective,
  mul,
  nop,
  seq,
  sub,
  unary,
} from "../ir/build.ts";
import { rewriteExpr, someNode, substitute, usesBuffer, usesVar } from "../ir/transform.ts";
import type { Target } from "./target.ts";

export interface Range {
  readonly lo: number;
  readonly hi: number;
}
const ANY: Range = { lo: -Infinity, hi: Infinity };
const point = (v: number): Range => ({ lo: v, hi: v });
const safe = (x: number, fallback: number): number => (Number.isNaN(x) ? fallback : x);

/** i32 (and comparison) semantics of the operators, as the CPU backend computes them. */
const I32_OPS: Readonly<Record<string, (a: number, b: number) => number | undefined>> = {
  "+": (a, b) => (a + b) | 0,
  "-": (a, b) => (a - b) | 0,
  "*": (a, b) => Math.imul(a, b),
  "/": (a, b) => (b === 0 ? undefined : (a / b) | 0),
  "%": (a, b) => (b === 0 ? undefined : (a % b) | 0),
  floordiv: (a, b) => (b === 0 ? undefined : Math.floor(a / b) | 0),
  floormod: (a, b) => (b === 0 ? undefined : (a - Math.floor(a / b) * b) | 0),
  min: Math.min,
  max: Math.max,
  "&": (a, b) => a & b,
  "|": (a, b) => a | b,
  "^": (a, b) => a ^ b,
  "<<": (a, b) => (b >= 0 && b < 32 ? a << b : undefined),
  ">>": (a, b) => (b >= 0 && b < 32 ? a >> b : undefined),
  "==": (a, b) => +(a === b),
  "!=": (a, b) => +(a !== b),
  "<": (a, b) => +(a < b),
  "<=": (a, b) => +(a <= b),
  ">": (a, b) => +(a > b),
  ">=": (a, b) => +(a >= b),
};

const isBool = (e: Expr, v: boolean): boolean => e.kind === "const" && e.dtype === "bool" && !!e.value === v;
const TRUE = constant(1, "bool");
const FALSE = constant(0, "bool");

/** u32 semantics of the operators on constants (values 0..2^32-1), as the CPU backend computes them. */
const U32_OPS: Readonly<Record<string, (a: number, b: number) => number | undefined>> = {
  "+": (a, b) => (a + b) >>> 0,
  "-": (a, b) => (a - b) >>> 0,
  "*": (a, b) => Math.imul(a, b) >>> 0,
  "&": (a, b) => (a & b) >>> 0,
  "|": (a, b) => (a | b) >>> 0,
  "^": (a, b) => (a ^ b) >>> 0,
  "<<": (a, b) => (b >= 0 && b < 32 ? (a << b) >>> 0 : undefined),
  ">>": (a, b) => (b >= 0 && b < 32 ? a >>> b : undefined),
};

/**
 * f32 and u32 arithmetic on constants (what unrolling leaves of per-iteration constants such as
 * q4_common.ts's masks and powers of two), so that every backend, SPIR-V included, gets constants
 * rather than run-time arithmetic. f32 +, -, *, / are computed in double and rounded once to f32,
 * which gives the IEEE single result exactly (double holds more than twice f32's precision);
 * conversions of integers to f32 likewise round once. f16 and bf16 are left to the device.
 */
function foldF32U32(e: Expr): Expr | undefined {
  if (e.kind === "binary" && e.a.kind === "const" && e.b.kind === "const") {
    if (e.dtype === "f32" && e.a.dtype === "f32" && e.b.dtype === "f32") {
      const [a, b] = [e.a.value, e.b.value];
      const v =
        e.op === "+" ? a + b : e.op === "-" ? a - b : e.op === "*" ? a * b : e.op === "/" ? a / b : undefined;
      return v === undefined ? undefined : constant(Math.fround(v), "f32");
    }
    if (e.dtype === "u32" && e.a.dtype === "u32") {
      const v = U32_OPS[e.op]?.(e.a.value, e.b.value);
      return v === undefined ? undefined : constant(v, "u32");
    }
  }
  if (e.kind === "unary" && e.op === "neg" && e.dtype === "f32" && e.a.kind === "const")
    return constant(-e.a.value, "f32");
  if (e.kind === "cast" && e.value.kind === "const") {
    const from = e.value.dtype;
    const v = e.value.value;
    if (e.dtype === "f32" && (from === "i32" || from === "u32" || from === "f32"))
      return constant(Math.fround(v), "f32");
    if (e.dtype === "u32" && (from === "i32" || from === "u32")) return constant(v >>> 0, "u32");
    if (e.dtype === "i32" && from === "u32") return constant(v | 0, "i32");
  }
  if (e.kind === "call" && e.name === "bitcast" && e.args[0]!.kind === "const") {
    const view = new DataView(new ArrayBuffer(4));
    const a = e.args[0]!;
    if (e.dtype === "f32" && (a.dtype === "u32" || a.dtype === "i32")) {
      view.setUint32(0, a.value >>> 0);
      return constant(view.getFloat32(0), "f32");
    }
  }
  return undefined;
}

/** A sum's terms with their signs: a + b - c gives [a, +], [b, +], [c, -]. */
function terms(e: Expr, neg = false, out: { e: Expr; neg: boolean }[] = []): { e: Expr; neg: boolean }[] {
  if (e.kind === "binary" && (e.op === "+" || e.op === "-") && e.dtype === "i32") {
    terms(e.a, neg, out);
    terms(e.b, e.op === "-" ? !neg : neg, out);
  } else out.push({ e, neg });
  return out;
}
const sumOf = (ts: readonly { e: Expr; neg: boolean }[]): Expr =>
  ts.reduce<Expr>((acc, t) => (t.neg ? sub(acc, t.e) : add(acc, t.e)), constant(0, "i32"));

/** t / c when t is a multiple of c by its form (k * x with c | k, or a constant), else undefined. */
function exactQuotient(t: Expr, c: number): Expr | undefined {
  if (t.kind === "const") return t.value % c === 0 ? constant(t.value / c, "i32") : undefined;
  if (t.kind === "binary" && t.op === "*") {
    if (isConst(t.b) && t.b.value % c === 0) return mul(t.a, constant(t.b.value / c, "i32"));
    if (isConst(t.a) && t.a.value % c === 0) return mul(constant(t.a.value / c, "i32"), t.b);
  }
  return undefined;
}

export class Simplifier {
  private readonly ranges = new Map<Var, Range>();

  constructor(private readonly launch?: LaunchConfig) {}

  /** Declares a variable's range (symbols: >= 0; loop variables: their bounds). */
  setRange(v: Var, r: Range): void {
    this.ranges.set(v, r);
  }

  range(e: Expr): Range {
    switch (e.kind) {
      case "const":
        return e.dtype === "i32" || e.dtype === "bool" ? point(e.value) : ANY;
      case "var":
        return this.ranges.get(e) ?? ANY;
      case "call": {
        const axis = e.args[0];
        if (!axis || !isConst(axis)) return ANY;
        if (e.name === "thread_id") return { lo: 0, hi: (this.launch?.block[axis.value] ?? Infinity) - 1 };
        if (e.name === "block_id") {
          const g = this.launch?.grid[axis.value];
          return { lo: 0, hi: g && isConst(g) ? g.value - 1 : Infinity };
        }
        return ANY;
      }
      case "select": {
        const [t, f] = [this.range(e.t), this.range(e.f)];
        return { lo: Math.min(t.lo, f.lo), hi: Math.max(t.hi, f.hi) };
      }
      case "binary":
        return this.binaryRange(e);
      default:
        return ANY;
    }
  }

  private binaryRange(e: Binary): Range {
    if (e.dtype === "bool") return { lo: 0, hi: 1 };
    if (e.dtype !== "i32") return ANY;
    const a = this.range(e.a);
    const b = this.range(e.b);
    switch (e.op) {
      case "+":
        return { lo: safe(a.lo + b.lo, -Infinity), hi: safe(a.hi + b.hi, Infinity) };
      case "-":
        return { lo: safe(a.lo - b.hi, -Infinity), hi: safe(a.hi - b.lo, Infinity) };
      case "*": {
        const ps = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi];
        if (ps.some(Number.isNaN)) return ANY;
        return { lo: Math.min(...ps), hi: Math.max(...ps) };
      }
      case "/":
      case "floordiv":
        if (e.op === "/" && a.lo < 0) return ANY;
        if (b.lo === b.hi && b.lo > 0) return { lo: Math.floor(a.lo / b.lo), hi: Math.floor(a.hi / b.lo) };
        return ANY;
      case "floormod":
        if (b.lo === b.hi && b.lo > 0) return a.lo >= 0 && a.hi < b.lo ? a : { lo: 0, hi: b.lo - 1 };
        return ANY;
      case "min":
        return { lo: Math.min(a.lo, b.lo), hi: Math.min(a.hi, b.hi) };
      case "max":
        return { lo: Math.max(a.lo, b.lo), hi: Math.max(a.hi, b.hi) };
      default:
        return ANY;
    }
  }

  expr(e: Expr): Expr {
    return rewriteExpr(e, { expr: (x) => this.rule(x) });
  }

  private rule(e: Expr): Expr {
    const folded = foldF32U32(e);
    if (folded) return folded;
    if (e.kind === "binary") return this.binaryRule(e);
    if (e.kind === "select" && e.cond.kind === "const") return e.cond.value ? e.t : e.f;
    if (e.kind === "unary" && e.op === "not" && e.a.kind === "const") return e.a.value ? FALSE : TRUE;
    if (e.kind === "unary" && e.op === "neg" && e.dtype === "i32" && e.a.kind === "const")
      return constant(-e.a.value | 0, "i32");
    if (e.kind === "cast" && e.dtype === "i32" && e.value.kind === "const" && e.value.dtype === "bool")
      return constant(e.value.value ? 1 : 0, "i32");
    return e;
  }

  private binaryRule(e: Binary): Expr {
    const { op, a, b } = e;
    if (op === "&&" || op === "||") {
      const unit = op === "&&";
      if (isBool(a, unit)) return b;
      if (isBool(b, unit)) return a;
      if (isBool(a, !unit) || isBool(b, !unit)) return unit ? FALSE : TRUE;
      return e;
    }
    if (a.dtype === "f32" || a.dtype === "f16" || a.dtype === "bf16") {
      if (op === "*" && a.kind === "const" && a.value === 1) return b;
      if (op === "*" && b.kind === "const" && b.value === 1) return a;
      return e;
    }
    if (a.dtype !== "i32") return e;
    if (a.kind === "const" && b.kind === "const") {
      const v = I32_OPS[op]?.(a.value, b.value);
      if (v !== undefined) return constant(v, e.dtype);
    }
    const ra = this.range(a);
    const rb = this.range(b);
    switch (op) {
      case "+":
      case "*":
        if (a.kind === "const" && b.kind !== "const") return this.binaryRule(binary(op, b, a));
        if (op === "+" && isConst(b, 0)) return a;
        if (op === "*" && isConst(b, 1)) return a;
        if (op === "*" && isConst(b, 0)) return b;
        if (b.kind === "const" && a.kind === "binary" && a.b.kind === "const") {
          // (x + c1) + c2, (x - c1) + c2, (x * c1) * c2
          if (op === "+" && a.op === "+") return add(a.a, constant((a.b.value + b.value) | 0, "i32"));
          if (op === "+" && a.op === "-")
            return this.binaryRule(binary("+", a.a, constant((b.value - a.b.value) | 0, "i32")));
          if (op === "*" && a.op === "*") return mul(a.a, constant(Math.imul(a.b.value, b.value), "i32"));
        }
        return e;
      case "-":
        if (b.kind === "const" && b.value === 0) return a;
        if (b.kind === "const" && a.kind === "binary" && a.op === "+" && a.b.kind === "const")
          return add(a.a, constant((a.b.value - b.value) | 0, "i32"));
        if (b.kind === "const" && b.value < 0) return add(a, constant(-b.value | 0, "i32"));
        return e;
      case "floordiv":
      case "floormod":
        return this.divMod(e, op, a, b);
      case "%":
        // A truncating remainder of a non-negative dividend is floormod's: x % 1 = 0,
        // (q * c + r) % c = r.
        return ra.lo >= 0 ? this.divMod(e, "floormod", a, b) : e;
      case "min":
        if (ra.hi <= rb.lo) return a;
        if (rb.hi <= ra.lo) return b;
        return e;
      case "max":
        if (ra.lo >= rb.hi) return a;
        if (rb.lo >= ra.hi) return b;
        return e;
      case "<":
        return ra.hi < rb.lo ? TRUE : ra.lo >= rb.hi ? FALSE : e;
      case "<=":
        return ra.hi <= rb.lo ? TRUE : ra.lo > rb.hi ? FALSE : e;
      case ">":
        return ra.lo > rb.hi ? TRUE : ra.hi <= rb.lo ? FALSE : e;
      case ">=":
        return ra.lo >= rb.hi ? TRUE : ra.hi < rb.lo ? FALSE : e;
      case "==":
        return ra.hi < rb.lo || rb.hi < ra.lo ? FALSE : e;
      case "!=":
        return ra.hi < rb.lo || rb.hi < ra.lo ? TRUE : e;
      default:
        return e;
    }
  }

  /** floordiv(q * c + r, c) = q and floormod(q * c + r, c) = r when 0 <= r < c. */
  private divMod(e: Binary, op: "floordiv" | "floormod", a: Expr, b: Expr): Expr {
    if (!isConst(b) || b.value <= 0) return e;
    const c = b.value;
    if (c === 1) return op === "floordiv" ? a : constant(0, "i32");
    const ts = terms(a);
    const quotients = ts.map((t) => exactQuotient(t.e, c));
    const rest = ts.filter((_, k) => !quotients[k]);
    const r = sumOf(rest);
    const rr = this.range(r);
    if (rr.lo >= 0 && rr.hi < c) {
      if (op === "floormod") return r;
      return sumOf(ts.flatMap((t, k) => (quotients[k] ? [{ e: quotients[k]!, neg: t.neg }] : [])));
    }
    // floordiv(floordiv(x, c1), c2) = floordiv(x, c1 * c2)
    if (op === "floordiv" && a.kind === "binary" && a.op === "floordiv" && isConst(a.b) && a.b.value > 0)
      return binary("floordiv", a.a, constant(a.b.value * c, "i32"));
    if (
      op === "floormod" &&
      a.kind === "binary" &&
      a.op === "floormod" &&
      isConst(a.b) &&
      a.b.value % c === 0
    )
      return binary("floormod", a.a, b);
    return e;
  }

  /** Ranges a condition implies for the variables it bounds from above (v < e, v <= e). */
  private refine(cond: Expr): void {
    if (cond.kind !== "binary") return;
    if (cond.op === "&&") {
      this.refine(cond.a);
      this.refine(cond.b);
      return;
    }
    const flip: Record<string, string> = { ">": "<", ">=": "<=" };
    const [op, v, bound] = cond.op in flip ? [flip[cond.op]!, cond.b, cond.a] : [cond.op, cond.a, cond.b];
    if (v.kind !== "var" || (op !== "<" && op !== "<=")) return;
    const r = this.range(v);
    const hi = this.range(bound).hi - (op === "<" ? 1 : 0);
    if (hi < r.hi) this.ranges.set(v, { lo: r.lo, hi });
  }

  stmt(s: Stmt): Stmt {
    switch (s.kind) {
      case "for":
        return this.loop(s);
      case "if": {
        const cond = this.expr(s.cond);
        if (cond.kind === "const") return cond.value ? this.stmt(s.then) : s.else ? this.stmt(s.else) : nop();
        const saved = new Map(this.ranges);
        this.refine(cond);
        const then = this.stmt(s.then);
        this.ranges.clear();
        for (const [k, v] of saved) this.ranges.set(k, v);
        const otherwise = s.else ? this.stmt(s.else) : undefined;
        const other = otherwise && !isNop(otherwise) ? otherwise : undefined;
        if (isNop(then) && !other) return nop();
        if (isNop(then)) return { kind: "if", cond: this.expr(unary("not", cond)), then: other! };
        return { kind: "if", cond, then, ...(other ? { else: other } : {}) };
      }
      case "seq":
        return mergeGuards(seq(s.body.map((b) => this.stmt(b))));
      case "let": {
        const value = this.expr(s.value);
        if (value.kind === "const") return this.stmt(substitute(s.body, new Map([[s.v, value]])));
        this.ranges.set(s.v, this.range(value));
        const body = this.stmt(s.body);
        if (!usesVar(body, s.v) && !hasSync(value)) return body;
        return { ...s, value, body };
      }
      case "allocate": {
        const body = this.stmt(s.body);
        return usesBuffer(body, s.buffer) ? { ...s, body } : body;
      }
      case "block": {
        const body = this.stmt(s.body);
        return isNop(body) ? body : { ...s, body };
      }
      case "store":
        return { ...s, indices: s.indices.map((i) => this.expr(i)), value: this.expr(s.value) };
      case "prefetch":
        return { ...s, indices: s.indices.map((i) => this.expr(i)), count: this.expr(s.count) };
      case "atomic": {
        const ex = (i: Expr) => this.expr(i);
        const result = s.result && { ...s.result, indices: s.result.indices.map(ex) };
        return { ...s, indices: s.indices.map(ex), value: ex(s.value), ...(result ? { result } : {}) };
      }
      case "barrier":
        return s;
    }
  }

  private loop(s: For): Stmt {
    const min = this.expr(s.min);
    const extent = this.expr(s.extent);
    if (isConst(extent) && extent.value <= 0) return nop();
    if (isConst(extent, 1) && s.forKind !== "thread" && s.forKind !== "parallel")
      return this.stmt(substitute(s.body, new Map([[s.loopVar, min]])));
    const rm = this.range(min);
    const re = this.range(extent);
    this.ranges.set(s.loopVar, { lo: rm.lo, hi: safe(rm.hi + re.hi - 1, Infinity) });
    const body = this.stmt(s.body);
    return isNop(body) ? body : { ...s, min, extent, body };
  }
}

/** Adjacent `if (c)` statements on the same immutable condition variable become one. */
function mergeGuards(s: Stmt): Stmt {
  if (s.kind !== "seq") return s;
  const out: Stmt[] = [];
  for (const st of s.body) {
    const prev = out[out.length - 1];
    if (
      prev?.kind === "if" &&
      st.kind === "if" &&
      !prev.else &&
      !st.else &&
      prev.cond.kind === "var" &&
      prev.cond === st.cond
    )
      out[out.length - 1] = { ...prev, then: seq([prev.then, st.then]) };
    else out.push(st);
  }
  return seq(out);
}

const hasSync = (e: Expr): boolean => someNode(e, (n) => n.kind === "call" && isWarpCollective(n.name));

/** A simplifier with the function's symbols (>= 0) and launch known. */
export function simplifierFor(f: PrimFunc): Simplifier {
  const s = new Simplifier(f.launch);
  for (const sym of f.symbols) s.setRange(sym, { lo: 0, hi: Infinity });
  return s;
}

export function simplifyPass(f: PrimFunc, _target?: Target): PrimFunc {
  const s = simplifierFor(f);
  const body = s.stmt(f.body);
  const launch = f.launch && {
    ...f.launch,
    grid: f.launch.grid.map((g) => s.expr(g)) as unknown as LaunchConfig["grid"],
  };
  return { ...f, body, ...(launch ? { launch } : {}) };
}
