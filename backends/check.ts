/**
 * Random inputs and result comparison shared by the tests and the GPU-machine runners (which have
 * no vitest): every backend is checked against the CPU backend this way.
 */
import { DTYPES, type DType } from "../dsl/dtypes.ts";
import { ndarray, toNumbers, type NDArray } from "../dsl/ndarray.ts";
import type { Expr, PrimFunc } from "../lower/ir/nodes.ts";
import { evalInt } from "../lower/ir/eval.ts";

/** A small deterministic PRNG (mulberry32), so failures reproduce from the printed seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomValues(dtype: DType, n: number, rand: () => number): number[] {
  const out: number[] = new Array(n);
  const kind = DTYPES[dtype].kind;
  for (let i = 0; i < n; i++) {
    if (kind === "float") out[i] = rand() * 2 - 1;
    else if (dtype === "u32") out[i] = Math.floor(rand() * 2 ** 32);
    else if (dtype === "u8") out[i] = Math.floor(rand() * 256);
    else if (dtype === "i8") out[i] = Math.floor(rand() * 256) - 128;
    else if (dtype === "bool") out[i] = rand() < 0.5 ? 1 : 0;
    else out[i] = Math.floor(rand() * 200) - 100;
  }
  return out;
}

export function randomArray(dtype: DType, shape: readonly number[], rand: () => number): NDArray {
  return ndarray(
    dtype,
    shape,
    randomValues(
      dtype,
      shape.reduce((a, b) => a * b, 1),
      rand,
    ),
  );
}

export const shapeOf = (dims: readonly Expr[], symbols: Readonly<Record<string, number>>): number[] =>
  dims.map((d) => evalInt(d, symbols));

/** Random arguments for every parameter of f; scalars come from `scalars` or are random. */
export function randomArgs(
  f: PrimFunc,
  symbols: Readonly<Record<string, number>>,
  seed: number,
  scalars: Readonly<Record<string, number>> = {},
): Record<string, NDArray | number> {
  const rand = rng(seed);
  const args: Record<string, NDArray | number> = {};
  for (const p of f.params) {
    if (p.kind === "scalar") args[p.v.name] = scalars[p.v.name] ?? randomValues(p.v.dtype, 1, rand)[0]!;
    else args[p.buffer.name] = randomArray(p.buffer.dtype, shapeOf(p.buffer.shape, symbols), rand);
  }
  return args;
}

export function cloneArgs(
  args: Readonly<Record<string, NDArray | number>>,
): Record<string, NDArray | number> {
  const out: Record<string, NDArray | number> = {};
  for (const [k, v] of Object.entries(args))
    out[k] = typeof v === "number" ? v : { dtype: v.dtype, shape: [...v.shape], data: v.data.slice() };
  return out;
}

export interface Mismatch {
  readonly buffer: string;
  readonly index: number;
  readonly expected: number;
  readonly actual: number;
}

/**
 * Compares two results buffer by buffer: exactly for integers (and when tol is 0), else within
 * tol relative to the buffer's largest magnitude. NaN only matches NaN.
 */
export function compareResults(
  expected: Readonly<Record<string, NDArray | number>>,
  actual: Readonly<Record<string, NDArray | number>>,
  tol: number,
): { worst: number; mismatches: Mismatch[] } {
  const mismatches: Mismatch[] = [];
  let worst = 0;
  for (const [name, v] of Object.entries(expected)) {
    if (typeof v === "number") continue;
    const x = toNumbers(v);
    const y = toNumbers(actual[name] as NDArray);
    const float = DTYPES[v.dtype].kind === "float";
    let scale = 1e-30;
    for (const t of x) if (Number.isFinite(t)) scale = Math.max(scale, Math.abs(t));
    for (let i = 0; i < x.length; i++) {
      const a = x[i]!;
      const b = y[i]!;
      if (Number.isNaN(a) && Number.isNaN(b)) continue;
      const err = a === b ? 0 : float ? Math.abs(a - b) / scale : Infinity;
      if (!(err <= (float ? tol : 0))) {
        if (mismatches.length < 10) mismatches.push({ buffer: name, index: i, expected: a, actual: b });
        else if (mismatches.length === 10)
          mismatches.push({ buffer: name, index: -1, expected: NaN, actual: NaN });
      }
      if (Number.isFinite(err)) worst = Math.max(worst, err);
      else worst = Infinity;
    }
  }
  return { worst, mismatches };
}
