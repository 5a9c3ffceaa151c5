/**
 * Shared pieces of the stdlib tests: the seed, random q4f16_1 weights, float64 references for
 * products, and an element-wise comparison against a per-element error bound (so a test states how
 * far each output may be from the exact value, and why).
 */
import { expect } from "vitest";
import { f16Bits, f16FromBits } from "../../dsl/dtypes.ts";
import { fromStorage, toNumbers, type NDArray } from "../../dsl/ndarray.ts";
import { dequantizeQ4f16_1, f16BitsFast, quantizeQ4f16_1 } from "../../llama/quant/q4f16_1.ts";
import { randomArray, rng } from "../helpers/random.ts";

export { randomArray, rng };

/** Printed in every failure, so a failing random case reproduces with TKC_SEED=<seed>. */
export const SEED = Number(process.env.TKC_SEED ?? Date.now() % 100000);

/** Relative rounding error of f16 (half an ulp) and f32. */
export const F16_EPS = 2 ** -11;
export const F32_EPS = 2 ** -24;

/**
 * Expects |got[i] - ref[i]| <= bound[i] for every i; reports the worst element.
 * `bound` may be one number for all elements.
 */
export function expectWithin(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  bound: ArrayLike<number> | number,
  what: string,
): void {
  expect(got.length, `${what}: length`).toBe(ref.length);
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < ref.length; i++) {
    const b = typeof bound === "number" ? bound : bound[i]!;
    const err = Math.abs(got[i]! - ref[i]!);
    const ratio = err / b;
    if (!(ratio <= worstRatio)) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (worst >= 0 && !(worstRatio <= 1)) {
    const b = typeof bound === "number" ? bound : bound[worst]!;
    expect.fail(
      `${what}: element ${worst} is ${got[worst]}, expected ${ref[worst]} within ${b} (seed ${SEED})`,
    );
  }
}

// Every f16 bit pattern's value, and the bit patterns of j / 1024 for j in [-1024, 1024).
const F16_TABLE = Float64Array.from({ length: 65536 }, (_, b) => f16FromBits(b));
const GRID_BITS = Uint16Array.from({ length: 2048 }, (_, j) => f16Bits((j - 1024) / 1024));

/** The values of an f16 (or any) NDArray as float64, by table for f16 (fast for 7B-sized weights). */
export function values(a: NDArray): Float64Array {
  if (a.dtype !== "f16") return toNumbers(a);
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = F16_TABLE[a.data[i]!]!;
  return out;
}

/** Random f16 values in [-1, 1) on a grid of 1/1024 (exact in f16; cheap enough for 7B weights). */
export function randomF16(shape: readonly number[], r: () => number): NDArray {
  const n = shape.reduce((a, b) => a * b, 1);
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) bits[i] = GRID_BITS[Math.floor(r() * 2048)]!;
  return fromStorage("f16", shape, bits);
}

/** Random f16 values in [lo, hi) (rounded to f16; f16BitsFast keeps 7B-sized weights quick). */
export function randomF16Between(shape: readonly number[], lo: number, hi: number, r: () => number): NDArray {
  const n = shape.reduce((a, b) => a * b, 1);
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) bits[i] = f16BitsFast(lo + (hi - lo) * r());
  return fromStorage("f16", shape, bits);
}

export interface Q4Weight {
  readonly n: number;
  readonly k: number;
  readonly packed: NDArray;
  readonly scales: NDArray;
}

/**
 * A random q4f16_1 weight [n, k]. Small ones are real quantizations of random weights (codes
 * 0..14); for the 7B shapes quantizing would dominate the test's time (the quantizer is tested in
 * test/quant), so their words and scales are random (all 16 codes occur, which the format allows).
 */
export function randomQ4(n: number, k: number, r: () => number): Q4Weight {
  if (n * k <= 1 << 20) {
    const w = new Float64Array(n * k).map(() => (r() * 2 - 1) * 0.05);
    const q = quantizeQ4f16_1(w, n, k);
    return {
      n,
      k,
      packed: fromStorage("u32", [n, k / 8], q.packed),
      scales: fromStorage("f16", [n, k / 32], q.scales),
    };
  }
  const words = new Uint32Array((n * k) / 8);
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(r() * 2 ** 32);
  return {
    n,
    k,
    packed: fromStorage("u32", [n, k / 8], words),
    scales: randomF16Between([n, k / 32], 0.001, 0.01, r),
  };
}

/** W x in float64 and sum_k |W x| per row, with W from a dequantized block of rows. */
function matvecRows(
  w: Float32Array | Float64Array,
  rows: number,
  k: number,
  x: Float64Array,
  y: Float64Array,
  abs: Float64Array,
  at: number,
): void {
  for (let i = 0; i < rows; i++) {
    let s = 0;
    let a = 0;
    const o = i * k;
    for (let j = 0; j < k; j++) {
      const p = w[o + j]! * x[j]!;
      s += p;
      a += Math.abs(p);
    }
    y[at + i] = s;
    abs[at + i] = a;
  }
}

/**
 * The float64 product W x of a q4 weight, with W from llama/quant's dequantizeQ4f16_1 (MLC's f16
 * dequantized values), a block of rows at a time to bound memory; and each row's sum |W x|.
 */
export function q4MatVec(w: Q4Weight, x: Float64Array): { y: Float64Array; abs: Float64Array } {
  const { n, k } = w;
  const y = new Float64Array(n);
  const abs = new Float64Array(n);
  const rowsPerBlock = 256;
  const packed = w.packed.data as Uint32Array;
  const scales = w.scales.data as Uint16Array;
  for (let r0 = 0; r0 < n; r0 += rowsPerBlock) {
    const rows = Math.min(rowsPerBlock, n - r0);
    const block = {
      packed: packed.subarray((r0 * k) / 8, ((r0 + rows) * k) / 8),
      scales: scales.subarray((r0 * k) / 32, ((r0 + rows) * k) / 32),
    };
    matvecRows(dequantizeQ4f16_1(block, rows, k), rows, k, x, y, abs, r0);
  }
  return { y, abs };
}

/** The float64 product w x of an f16 weight [n, k], and each row's sum |w x|. */
export function f16MatVec(
  w: NDArray,
  n: number,
  k: number,
  x: Float64Array,
): { y: Float64Array; abs: Float64Array } {
  const y = new Float64Array(n);
  const abs = new Float64Array(n);
  matvecRows(values(w), n, k, x, y, abs, 0);
  return { y, abs };
}

/**
 * How far an f32-accumulated product rounded to f16 may be from the float64 value `y`:
 * the f16 rounding of the result (half an ulp, plus the subnormal quantum), the f32 rounding of
 * k sums (k * 2^-24 of sum |w x|), plus `weightEps` of sum |w x| when the kernel's weights differ
 * from the reference's (the kernel's exact (q - 7) * scale vs MLC's f16-rounded value: 2^-11).
 */
export function gemvBound(y: number, abs: number, k: number, weightEps: number): number {
  return F16_EPS * Math.abs(y) + 2 ** -25 + (k * F32_EPS + weightEps) * abs;
}

/** A view of an NDArray's storage with another shape (as a GPU buffer is reinterpreted). */
export const reshape = (a: NDArray, shape: readonly number[]): NDArray => fromStorage(a.dtype, shape, a.data);
