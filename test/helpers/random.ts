/**
 * Random inputs for kernels and the comparison every schedule test makes: the scheduled function
 * computes what the unscheduled one does, on fresh random inputs, on the CPU backend.
 */
import { expect } from "vitest";
import { DTYPES, type DType } from "../../dsl/dtypes.ts";
import { ndarray, toNumbers, type NDArray } from "../../dsl/ndarray.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import type { Expr, PrimFunc } from "../../lower/ir/nodes.ts";

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

function extent(e: Expr, symbols: Readonly<Record<string, number>>): number {
  if (e.kind === "const") return e.value;
  if (e.kind === "var" && e.name in symbols) return symbols[e.name]!;
  throw new Error(`cannot size a dimension ${JSON.stringify(e)}; give a value for its symbol`);
}

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
    else
      args[p.buffer.name] = randomArray(
        p.buffer.dtype,
        p.buffer.shape.map((d) => extent(d, symbols)),
        rand,
      );
  }
  return args;
}

function cloneArgs(args: Record<string, NDArray | number>): Record<string, NDArray | number> {
  const out: Record<string, NDArray | number> = {};
  for (const [k, v] of Object.entries(args))
    out[k] = typeof v === "number" ? v : { dtype: v.dtype, shape: [...v.shape], data: v.data.slice() };
  return out;
}

/**
 * Runs both functions on the same random inputs and expects every buffer to agree: exactly for
 * integer buffers, within `tol` (relative to the largest magnitude) for floats.
 */
export function expectSameResults(
  reference: PrimFunc,
  scheduled: PrimFunc,
  symbols: Readonly<Record<string, number>>,
  opts: { seed?: number; tol?: number; scalars?: Record<string, number> } = {},
): void {
  const seed = opts.seed ?? 1;
  const args = randomArgs(reference, symbols, seed, opts.scalars);
  const a = cloneArgs(args);
  const b = cloneArgs(args);
  cpuKernel(reference)(a);
  cpuKernel(scheduled)(b);
  for (const [name, v] of Object.entries(a)) {
    if (typeof v === "number") continue;
    const x = toNumbers(v);
    const y = toNumbers(b[name] as NDArray);
    if (DTYPES[v.dtype].kind !== "float" || !opts.tol) {
      expect(Array.from(y), `buffer ${name} (seed ${seed})`).toEqual(Array.from(x));
    } else {
      let scale = 0;
      for (const t of x) scale = Math.max(scale, Math.abs(t));
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
      expect(worst / Math.max(scale, 1e-30), `buffer ${name} (seed ${seed})`).toBeLessThanOrEqual(opts.tol);
    }
  }
}
