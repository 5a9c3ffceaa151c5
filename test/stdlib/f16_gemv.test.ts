/** f16-weight GEMV and GEMM on the CPU against a float64 product of the same f16 values. */
import { describe, test } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { toNumbers, zeros } from "../../dsl/ndarray.ts";
import { f16Gemm, f16Gemv } from "../../stdlib/f16_gemv.ts";
import { SEED, expectWithin, f16MatVec, gemvBound, randomF16, rng } from "./helpers.ts";

describe(`f16 GEMV and GEMM on the CPU (seed ${SEED})`, () => {
  test("f16Gemv, tiny to Llama-2-7B's 4096 x 4096", () => {
    for (const [n, k] of [
      [1, 1],
      [3, 7],
      [33, 130],
      [4096, 4096],
    ] as const) {
      const run = cpuKernel(f16Gemv, { boundsCheck: n * k < 1e6 });
      const r = rng(SEED + n + k);
      const w = randomF16([n, k], r);
      const x = randomF16([k], r);
      const y = zeros("f16", [n]);
      run({ x, w, y });
      const ref = f16MatVec(w, n, k, toNumbers(x));
      const bound = ref.y.map((v, i) => gemvBound(v, ref.abs[i]!, k, 0));
      expectWithin(toNumbers(y), ref.y, bound, `f16Gemv ${n}x${k}`);
    }
  });

  test("f16Gemm", () => {
    const run = cpuKernel(f16Gemm);
    for (const [m, n, k] of [
      [1, 1, 1],
      [4, 9, 33],
      [12, 20, 64],
    ] as const) {
      const r = rng(SEED + m * n * k);
      const w = randomF16([n, k], r);
      const x = randomF16([m, k], r);
      const y = zeros("f16", [m, n]);
      run({ x, w, y });
      const xs = toNumbers(x);
      const got = toNumbers(y);
      for (let i = 0; i < m; i++) {
        const ref = f16MatVec(w, n, k, xs.subarray(i * k, (i + 1) * k));
        const bound = ref.y.map((v, j) => gemvBound(v, ref.abs[j]!, k, 0));
        expectWithin(got.subarray(i * n, (i + 1) * n), ref.y, bound, `f16Gemm ${m}x${n}x${k} row ${i}`);
      }
    }
  });
});
