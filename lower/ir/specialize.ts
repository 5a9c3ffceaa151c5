/**
 * Specialisation of a function before scheduling: symbolic dimensions bound to constants (GPU code
 * gets constant trip counts and loses guards), and the float dtype of activations changed (one
 * f16 kernel source serves an f32 model too).
 */
import type { DType } from "../../dsl/dtypes.ts";
import * as B from "./build.ts";
import type { Buffer, Expr, Param, PrimFunc, Stmt, Var } from "./nodes.ts";
import { remapAtomic, rewriteStmt, substitute } from "./transform.ts";

/** Replaces the named symbolic dimensions by constants, in shapes and in the body. */
export function specialize(f: PrimFunc, values: Readonly<Record<string, number>>): PrimFunc {
  const map = new Map<Var, Expr>();
  for (const s of f.symbols) {
    const v = values[s.name];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v <= 0)
      throw new Error(`tkc: specialize ${f.name}: ${s.name} = ${v} is not a positive integer`);
    map.set(s, B.i32c(v));
  }
  for (const k of Object.keys(values))
    if (!f.symbols.some((s) => s.name === k))
      throw new Error(
        `tkc: specialize ${f.name}: no symbolic dimension ${k} (it has ${f.symbols.map((s) => s.name).join(", ") || "none"})`,
      );
  if (map.size === 0) return f;
  const buffers = new Map<Buffer, Buffer>();
  const remap = (b: Buffer): Buffer => {
    let nb = buffers.get(b);
    if (!nb) {
      nb = {
        ...b,
        shape: b.shape.map((d) => substitute(d, map)),
        ...(b.allocShape ? { allocShape: b.allocShape.map((d) => substitute(d, map)) } : {}),
      };
      buffers.set(b, nb);
    }
    return nb;
  };
  return mapBuffersAndBody(
    f,
    remap,
    (s) => foldConstants(substitute(s, map)),
    f.symbols.filter((s) => !map.has(s)),
    `specialized ${JSON.stringify(values)}`,
  );
}

/** Changes every use of dtype `from` (buffers, casts, constants, arithmetic) to `to`. */
export function retype(f: PrimFunc, from: DType, to: DType): PrimFunc {
  const swap = (d: DType): DType => (d === from ? to : d);
  const buffers = new Map<Buffer, Buffer>();
  const remap = (b: Buffer): Buffer => {
    let nb = buffers.get(b);
    if (!nb) buffers.set(b, (nb = { ...b, dtype: swap(b.dtype) }));
    return nb;
  };
  const vars = new Map<Var, Var>();
  const remapVar = (v: Var): Var => {
    if (v.dtype !== from) return v;
    let nv = vars.get(v);
    if (!nv) vars.set(v, (nv = { ...v, dtype: to }));
    return nv;
  };
  const body = (s: Stmt): Stmt =>
    rewriteStmt(s, {
      expr: (e) => {
        switch (e.kind) {
          case "var":
            return remapVar(e);
          case "cast":
            return e.dtype === from
              ? e.value.dtype === to
                ? e.value
                : { ...e, dtype: to }
              : e.value.dtype === e.dtype
                ? e.value
                : e;
          case "const":
          case "binary":
          case "unary":
          case "call":
          case "select":
          case "load":
            return e.dtype === from ? ({ ...e, dtype: to } as Expr) : e;
        }
        return e;
      },
      stmt: (st) => {
        if (st.kind === "for") return { ...st, loopVar: remapVar(st.loopVar) };
        if (st.kind === "let") return { ...st, v: remapVar(st.v) };
        return st;
      },
    });
  const out = mapBuffersAndBody(f, remap, body, f.symbols, `${from}->${to}`);
  const params: Param[] = out.params.map((p) =>
    p.kind === "scalar" ? { kind: "scalar", v: remapVar(p.v) } : p,
  );
  return { ...out, params };
}

function mapBuffersAndBody(
  f: PrimFunc,
  remap: (b: Buffer) => Buffer,
  body: (s: Stmt) => Stmt,
  symbols: readonly Var[],
  note: string,
): PrimFunc {
  const params: Param[] = f.params.map((p) =>
    p.kind === "buffer" ? { kind: "buffer", buffer: remap(p.buffer) } : p,
  );
  const rebuffer = (s: Stmt): Stmt =>
    rewriteStmt(s, {
      expr: (e) => (e.kind === "load" ? { ...e, buffer: remap(e.buffer), dtype: remap(e.buffer).dtype } : e),
      stmt: (st) =>
        st.kind === "atomic"
          ? remapAtomic(st, remap)
          : st.kind === "store" || st.kind === "prefetch" || st.kind === "allocate"
            ? ({ ...st, buffer: remap(st.buffer) } as Stmt)
            : st,
    });
  const prev = f.attrs.specialized;
  return {
    ...f,
    params,
    symbols,
    body: rebuffer(body(f.body)),
    attrs: { ...f.attrs, specialized: prev ? `${String(prev)}; ${note}` : note },
  };
}

/**
 * Turns scalar parameters into one-element i32/f32 tensors read at the kernel's start (named
 * `${name}_mem`): values that change every decode step (the position) then live in device memory,
 * so one recorded launch sequence (a CUDA graph) serves every step.
 */
export function scalarsFromMemory(f: PrimFunc, names: readonly string[]): PrimFunc {
  const map = new Map<Var, Expr>();
  const params: Param[] = f.params.map((p) => {
    if (p.kind !== "scalar" || !names.includes(p.v.name)) return p;
    const buf = B.buffer(`${p.v.name}_mem`, p.v.dtype, [B.i32c(1)], "global");
    map.set(p.v, B.load(buf, [B.i32c(0)]));
    return { kind: "buffer", buffer: buf };
  });
  for (const n of names)
    if (!f.params.some((p) => p.kind === "scalar" && p.v.name === n))
      throw new Error(`tkc: ${f.name} has no scalar parameter ${n}`);
  // Read each value once, at the top: a let keeps the loads out of loop bounds and guards.
  let body = f.body;
  for (const [v, ld] of map) body = B.letStmt(v, ld, body);
  return { ...f, params, body };
}

const FOLD: Partial<Record<string, (a: number, b: number) => number>> = {
  "+": (a, b) => a + b,
  "-": (a, b) => a - b,
  "*": (a, b) => a * b,
  "/": (a, b) => Math.trunc(a / b),
  "%": (a, b) => a % b,
  floordiv: (a, b) => Math.floor(a / b),
  floormod: (a, b) => a - Math.floor(a / b) * b,
  min: Math.min,
  max: Math.max,
};

/**
 * Folds i32 arithmetic on constants (what specialisation leaves, e.g. idiv(48, 2)), so extents
 * become constants that thread bindings and unrolling need, and inlines the lets that fold to an
 * integer constant (`const half = idiv(d, 2)`), so that dependence tests see `i + 64` rather than
 * `i + half`. Loops are left alone.
 */
function foldConstants(s: Stmt): Stmt {
  return rewriteStmt(foldArithmetic(s), {
    preStmt: (st) =>
      st.kind === "let" && st.value.kind === "const" && st.value.dtype === "i32"
        ? foldConstants(substitute(st.body, new Map([[st.v, st.value]])))
        : undefined,
  });
}

function foldArithmetic(s: Stmt): Stmt {
  return rewriteStmt(s, {
    expr: (e) => {
      if (e.kind !== "binary" || e.dtype !== "i32" || e.a.kind !== "const" || e.b.kind !== "const") return e;
      const op = FOLD[e.op];
      if (
        !op ||
        ((e.op === "/" || e.op === "%" || e.op === "floordiv" || e.op === "floormod") && e.b.value === 0)
      )
        return e;
      return B.constant(op(e.a.value, e.b.value) | 0, "i32");
    },
  });
}
