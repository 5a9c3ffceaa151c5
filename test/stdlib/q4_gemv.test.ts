/**
 * q4f16_1 GEMV/GEMM on the CPU against llama/quant's dequantizeQ4f16_1 and a float64 product, from
 * tiny shapes to Llama-2-7B's (4096 x 4096 for q/k/v/o, 32000 x 4096 for the classifier). Each
 * output must lie within the error an f32-accumulated, f16-rounded product can have (gemvBound).
 */
import { describe, expect, test } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { fromStorage, ndarray, toNumbers, zeros } from "../../dsl/ndarray.ts";
import { Q4_GROUP_SIZE, Q4_PER_WORD, Q4_ZERO } from "../../llama/quant/q4f16_1.ts";
import { q4Gemm, q4Gemv, q4GemvF32 } from "../../stdlib/q4_gemv.ts";
import { Q4_GROUP, Q4_PER_WORD as KERNEL_PER_WORD, Q4_ZERO as KERNEL_ZERO } from "../../stdlib/q4_common.ts";
import {
  F16_EPS,
  F32_EPS,
  SEED,
  expectWithin,
  gemvBound,
  q4MatVec,
  randomF16,
  randomQ4,
  rng,
} from "./helpers.ts";

const SMALL: [number, number][] = [
  [1, 32],
  [3, 64],
  [17, 96],
  [64, 256],
];

describe(`q4f16_1 GEMV and GEMM on the CPU (seed ${SEED})`, () => {
  test("the kernels' format constants are the quantizer's", () => {
    expect([Q4_GROUP, KERNEL_PER_WORD, KERNEL_ZERO]).toEqual([Q4_GROUP_SIZE, Q4_PER_WORD, Q4_ZERO]);
  });

  test("q4Gemv, small shapes", () => {
    const run = cpuKernel(q4Gemv);
    for (const [n, k] of SMALL) {
      const r = rng(SEED + n * 7 + k);
      const w = randomQ4(n, k, r);
      const x = randomF16([k], r);
      const y = zeros("f16", [n]);
      run({ x, packed: w.packed, scales: w.scales, y });
      const ref = q4MatVec(w, toNumbers(x));
      const bound = ref.y.map((v, i) => gemvBound(v, ref.abs[i]!, k, F16_EPS));
      expectWithin(toNumbers(y), ref.y, bound, `q4Gemv ${n}x${k}`);
    }
  });

  test("q4Gemv reads element r of a word at bits 4r, with the scale of group k/32", () => {
    // One non-zero code (14, weight +7 * scale) in an all-zero weight (code 7) picks out one x.
    const run = cpuKernel(q4Gemv);
    const [n, k] = [2, 64];
    const col = 45; // word 5, bits 20..23, group 1
    const words = new Uint32Array((n * k) / 8).fill(0x77777777);
    words[(k + col) >> 3] = (0x77777777 & ~(0xf << (4 * (col % 8)))) | (14 << (4 * (col % 8)));
    const scales = new Float64Array((n * k) / 32).fill(1);
    scales[1 * (k / 32) + 1] = 2; // row 1, group 1
    const x = ndarray(
      "f16",
      [k],
      Array.from({ length: k }, (_, i) => i / 64),
    ); // exact in f16
    const y = zeros("f16", [n]);
    run({
      x,
      packed: fromStorage("u32", [n, k / 8], words),
      scales: ndarray("f16", [n, k / 32], scales),
      y,
    });
    expect(Array.from(toNumbers(y))).toEqual([0, 7 * 2 * (col / 64)]);
  });

  test("q4Gemm, small shapes and a prefill-sized batch", () => {
    const run = cpuKernel(q4Gemm);
    for (const [m, n, k] of [
      [1, 3, 32],
      [5, 17, 96],
      [16, 64, 128],
    ] as const) {
      const r = rng(SEED + m * 31 + n);
      const w = randomQ4(n, k, r);
      const x = randomF16([m, k], r);
      const y = zeros("f16", [m, n]);
      run({ x, packed: w.packed, scales: w.scales, y });
      const got = toNumbers(y);
      const xs = toNumbers(x);
      for (let i = 0; i < m; i++) {
        const ref = q4MatVec(w, xs.subarray(i * k, (i + 1) * k));
        const bound = ref.y.map((v, j) => gemvBound(v, ref.abs[j]!, k, F16_EPS));
        expectWithin(got.subarray(i * n, (i + 1) * n), ref.y, bound, `q4Gemm ${m}x${n}x${k} row ${i}`);
      }
    }
  });

  test("q4Gemv at Llama-2-7B's 4096 x 4096 (q, k, v, o projections)", () => {
    const run = cpuKernel(q4Gemv, { boundsCheck: false });
    const [n, k] = [4096, 4096];
    const r = rng(SEED + 4096);
    const w = randomQ4(n, k, r);
    const x = randomF16([k], r);
    const y = zeros("f16", [n]);
    run({ x, packed: w.packed, scales: w.scales, y });
    const ref = q4MatVec(w, toNumbers(x));
    const bound = ref.y.map((v, i) => gemvBound(v, ref.abs[i]!, k, F16_EPS));
    expectWithin(toNumbers(y), ref.y, bound, `q4Gemv ${n}x${k}`);
  });

  test("q4GemvF32 at Llama-2-7B's classifier, 32000 x 4096 (f32 logits)", () => {
    const run = cpuKernel(q4GemvF32, { boundsCheck: false });
    const [n, k] = [32000, 4096];
    const r = rng(SEED + 32000);
    const w = randomQ4(n, k, r);
    const x = randomF16([k], r);
    const y = zeros("f32", [n]);
    run({ x, packed: w.packed, scales: w.scales, y });
    const ref = q4MatVec(w, toNumbers(x));
    // No f16 rounding of the result: only the f32 sums and the weights' f16 rounding in the reference.
    const bound = ref.y.map((_, i) => (k * F32_EPS + F16_EPS) * ref.abs[i]!);
    expectWithin(y.data as Float32Array, ref.y, bound, `q4GemvF32 ${n}x${k}`);
  });
});
