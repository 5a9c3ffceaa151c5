/**
 * Every example kernel on the CPU backend against a plain-TypeScript reference (computed in
 * float64, or exactly for integer results), on fresh random inputs of several shapes.
 */
import { describe, expect, test } from "vitest";
import * as K from "../examples/kernels.ts";
import { cpuKernel } from "../backends/cpu/runtime.ts";
import { ndarray, toNumbers, zeros, type NDArray } from "../dsl/ndarray.ts";
import { f16FromBits, roundF16 } from "../dsl/dtypes.ts";
import { randomArray, rng } from "./helpers/random.ts";

const SEED = Number(process.env.TKC_SEED ?? Date.now() % 100000);

function expectClose(actual: NDArray, expected: ArrayLike<number>, rel: number, what: string): void {
  const got = toNumbers(actual);
  expect(got.length, what).toBe(expected.length);
  let scale = 1e-30;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(got[i]! - expected[i]!);
    if (!(err <= rel * scale))
      expect.fail(`${what}: element ${i} is ${got[i]}, expected ${expected[i]} (seed ${SEED})`);
  }
}

const SHAPES: [number, number][] = [
  [1, 1],
  [3, 5],
  [7, 33],
  [16, 64],
];

describe(`example kernels on the CPU match plain TypeScript (seed ${SEED})`, () => {
  test("addBroadcast", () => {
    const run = cpuKernel(K.addBroadcast);
    for (const [m, n] of SHAPES) {
      const r = rng(SEED + m * n);
      const x = randomArray("f32", [m, n], r);
      const b = randomArray("f32", [n], r);
      const y = zeros("f32", [m, n]);
      run({ x, b, y });
      const ref = new Float64Array(m * n).map((_, k) => Math.fround(x.data[k]! + b.data[k % n]!));
      expectClose(y, ref, 0, `addBroadcast ${m}x${n}`);
    }
  });

  test("siluMul", () => {
    const run = cpuKernel(K.siluMul);
    for (const n of [1, 17, 300]) {
      const r = rng(SEED + n);
      const gate = randomArray("f16", [n], r);
      const up = randomArray("f16", [n], r);
      const out = zeros("f16", [n]);
      run({ gate, up, out });
      const g = toNumbers(gate);
      const u = toNumbers(up);
      const ref = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]!);
      expectClose(out, ref, 2e-3, `siluMul ${n}`);
    }
  });

  test("softmax", () => {
    const run = cpuKernel(K.softmax);
    for (const [m, n] of SHAPES) {
      const r = rng(SEED + 7 * n);
      const x = randomArray("f32", [m, n], r);
      const y = zeros("f32", [m, n]);
      run({ x, y });
      const ref = new Float64Array(m * n);
      for (let i = 0; i < m; i++) {
        const row = Array.from(x.data.slice(i * n, (i + 1) * n));
        const mx = Math.max(...row);
        const s = row.reduce((a, v) => a + Math.exp(v - mx), 0);
        row.forEach((v, j) => (ref[i * n + j] = Math.exp(v - mx) / s));
      }
      expectClose(y, ref, 1e-6, `softmax ${m}x${n}`);
    }
  });

  test("rmsNorm", () => {
    const run = cpuKernel(K.rmsNorm);
    const d = K.NORM_DIM;
    for (const n of [1, 3, 9]) {
      const r = rng(SEED + n);
      const x = randomArray("f16", [n, d], r);
      const w = randomArray("f16", [d], r);
      const y = zeros("f16", [n, d]);
      const eps = 1e-5;
      run({ x, w, y, eps });
      const xs = toNumbers(x);
      const ws = toNumbers(w);
      const ref = new Float64Array(n * d);
      for (let i = 0; i < n; i++) {
        let ss = 0;
        for (let k = 0; k < d; k++) ss += xs[i * d + k]! ** 2;
        const rs = 1 / Math.sqrt(ss / d + eps);
        for (let k = 0; k < d; k++) ref[i * d + k] = xs[i * d + k]! * rs * ws[k]!;
      }
      expectClose(y, ref, 2e-3, `rmsNorm ${n}`);
    }
  });

  test("matmul (f32)", () => {
    const run = cpuKernel(K.matmul);
    for (const [m, k, n] of [
      [1, 1, 1],
      [3, 5, 7],
      [8, 33, 9],
    ] as const) {
      const r = rng(SEED + m + k + n);
      const a = randomArray("f32", [m, k], r);
      const b = randomArray("f32", [k, n], r);
      const c = zeros("f32", [m, n]);
      run({ a, b, c });
      const ref = new Float64Array(m * n);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++)
          for (let t = 0; t < k; t++) ref[i * n + j] += a.data[i * k + t]! * b.data[t * n + j]!;
      expectClose(c, ref, 1e-5, `matmul ${m}x${k}x${n}`);
    }
  });

  test("matmulF16 (f16 in, f32 accumulate)", () => {
    const run = cpuKernel(K.matmulF16);
    for (const [m, k, n] of [
      [1, 8, 3],
      [5, 67, 11],
    ] as const) {
      const r = rng(SEED + 3 * k);
      const a = randomArray("f16", [m, k], r);
      const w = randomArray("f16", [n, k], r);
      const c = zeros("f16", [m, n]);
      run({ a, w, c });
      const av = toNumbers(a);
      const wv = toNumbers(w);
      const ref = new Float64Array(m * n);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++)
          for (let t = 0; t < k; t++) ref[i * n + j] += av[i * k + t]! * wv[j * k + t]!;
      expectClose(c, ref, 2e-3, `matmulF16 ${m}x${k}x${n}`);
    }
  });

  test("transpose (exact)", () => {
    const run = cpuKernel(K.transpose);
    for (const [m, n] of SHAPES) {
      const x = randomArray("i32", [m, n], rng(SEED + m));
      const y = zeros("i32", [n, m]);
      run({ x, y });
      const ref = new Int32Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) ref[j * m + i] = x.data[i * n + j]!;
      expect(Array.from(y.data)).toEqual(Array.from(ref));
    }
  });

  test("sumAll over a symbolic length", () => {
    const run = cpuKernel(K.sumAll);
    for (const n of [1, 2, 31, 1000]) {
      const x = randomArray("f32", [n], rng(SEED + n));
      const out = zeros("f32", [1]);
      run({ x, out });
      const ref = Array.from(x.data).reduce((a, v) => a + v, 0);
      expect(Math.abs(out.data[0]! - ref)).toBeLessThanOrEqual(1e-5 * n);
    }
  });

  test("int4Dequant (exact, MLC's q4f16_1 packing)", () => {
    const run = cpuKernel(K.int4Dequant);
    for (const [n, k] of [
      [1, 32],
      [3, 96],
    ] as const) {
      const r = rng(SEED + n * k);
      const q = Array.from({ length: n * k }, () => Math.floor(r() * 15));
      const packed = new Uint32Array((n * k) / 8);
      q.forEach((v, i) => (packed[i >> 3] = (packed[i >> 3]! | (v << (4 * (i % 8)))) >>> 0));
      const scales = randomArray("f16", [n, k / 32], r);
      const out = zeros("f16", [n, k]);
      run({ packed: { dtype: "u32", shape: [n, k / 8], data: packed }, scales, out });
      const ref = q.map((v, i) => {
        const row = Math.floor(i / k);
        const s = f16FromBits(scales.data[row * (k / 32) + Math.floor((i % k) / 32)]!);
        return roundF16((v - 7) * s);
      });
      expect(Array.from(toNumbers(out))).toEqual(ref);
    }
  });

  test("argmax (exact)", () => {
    const run = cpuKernel(K.argmax);
    for (const [m, n] of SHAPES) {
      const x = randomArray("f32", [m, n], rng(SEED + 11 * m));
      const out = zeros("i32", [m]);
      run({ x, out });
      for (let i = 0; i < m; i++) {
        const row = Array.from(x.data.slice(i * n, (i + 1) * n));
        expect(out.data[i]).toBe(row.indexOf(Math.max(...row)));
      }
    }
  });

  test("histogram (atomicAdd into its bins, from what they held)", () => {
    const run = cpuKernel(K.histogram);
    const x = randomArray("f32", [500], rng(SEED + 5));
    const hist = ndarray("i32", [6], [3, 0, 0, 1, 0, 2]);
    const want = [3, 0, 0, 1, 0, 2];
    for (const v of x.data as Float32Array) want[Math.max(0, Math.min(Math.floor(v * 6), 5))]!++;
    run({ x, hist });
    expect(Array.from(hist.data)).toEqual(want);
  });

  test("stagedRowSums (rows streamed through a ring of asynchronous copies)", () => {
    const run = cpuKernel(K.stagedRowSums);
    for (const [m, n] of [
      [3, 128],
      [5, 640],
    ] as const) {
      const x = randomArray("f32", [m, n / 128, 128], rng(SEED + 13 * n));
      const y = zeros("f32", [m]);
      run({ x, y });
      for (let i = 0; i < m; i++) {
        const want = Array.from(x.data.slice(i * n, (i + 1) * n)).reduce((a, b) => a + b, 0);
        expect(y.data[i]).toBeCloseTo(want, 4);
      }
    }
  });

  test("bad arguments are named", () => {
    const run = cpuKernel(K.addBroadcast);
    const x = zeros("f32", [2, 3]);
    expect(() => run({ x, b: zeros("f32", [4]), y: zeros("f32", [2, 3]) })).toThrow(
      /b\.shape\[0\] is 4 but n is 3 \(from x\.shape\[1\]\)/,
    );
    expect(() => run({ x, b: zeros("f16", [3]), y: zeros("f32", [2, 3]) })).toThrow(
      /b has dtype f16, the kernel wants f32/,
    );
    expect(() => run({ x, y: zeros("f32", [2, 3]) } as never)).toThrow(/missing argument b/);
    expect(() => ndarray("f32", [2], [1, 2, 3])).toThrow(/3 values given for shape \[2\]/);
  });
});
