/**
 * The fused q4f16_1 GEMMs (prefill): each token's row must equal the fused GEMV on that token bit
 * for bit, and the GEMV is itself checked against float64 references in q4_fused.test.ts; one
 * float64 check here guards the GEMM's own indexing.
 */
import { describe, expect, test } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { fromStorage, toNumbers, zeros, type NDArray } from "../../dsl/ndarray.ts";
import { q4GateUpSilu, q4GemvResidual, q4QkvGemv } from "../../stdlib/q4_fused.ts";
import { q4GateUpSiluGemm, q4GemmResidual, q4QkvGemm } from "../../stdlib/q4_fused_gemm.ts";
import { F16_EPS, SEED, expectWithin, gemvBound, q4MatVec, randomF16, randomQ4, rng } from "./helpers.ts";

/** Row m of a [M, D] f16 array, as its own [D] array. */
const row = (a: NDArray, m: number): NDArray => {
  const d = a.shape[1]!;
  return fromStorage("f16", [d], (a.data as Uint16Array).slice(m * d, (m + 1) * d));
};

describe(`fused q4f16_1 GEMMs on the CPU (seed ${SEED})`, () => {
  const [M, K, qDim, kvDim, inter] = [5, 96, 24, 8, 20];

  test("q4QkvGemm: each token as q4QkvGemv, and q against float64", () => {
    const r = rng(SEED + 1);
    const w = randomQ4(qDim + 2 * kvDim, K, r);
    const x = randomF16([M, K], r);
    const [q, k, v] = [zeros("f16", [M, qDim]), zeros("f16", [M, kvDim]), zeros("f16", [M, kvDim])];
    cpuKernel(q4QkvGemm)({ x, packed: w.packed, scales: w.scales, q, k, v });
    const gemv = cpuKernel(q4QkvGemv);
    for (let m = 0; m < M; m++) {
      const [q1, k1, v1] = [zeros("f16", [qDim]), zeros("f16", [kvDim]), zeros("f16", [kvDim])];
      gemv({ x: row(x, m), packed: w.packed, scales: w.scales, q: q1, k: k1, v: v1 });
      expect([...row(q, m).data, ...row(k, m).data, ...row(v, m).data], `token ${m}`).toEqual([
        ...q1.data,
        ...k1.data,
        ...v1.data,
      ]);
    }
    const ref = q4MatVec(w, toNumbers(row(x, M - 1)));
    const bound = ref.y.map((y, i) => gemvBound(y, ref.abs[i]!, K, F16_EPS));
    expectWithin(toNumbers(row(v, M - 1)), ref.y.subarray(qDim + kvDim), bound.subarray(qDim + kvDim), "v");
  });

  test("q4GateUpSiluGemm: each token as q4GateUpSilu", () => {
    const r = rng(SEED + 2);
    const w = randomQ4(2 * inter, K, r);
    const x = randomF16([M, K], r);
    const out = zeros("f16", [M, inter]);
    cpuKernel(q4GateUpSiluGemm)({ x, packed: w.packed, scales: w.scales, out });
    const gemv = cpuKernel(q4GateUpSilu);
    for (let m = 0; m < M; m++) {
      const o1 = zeros("f16", [inter]);
      gemv({ x: row(x, m), packed: w.packed, scales: w.scales, out: o1 });
      expect(Array.from(row(out, m).data), `token ${m}`).toEqual(Array.from(o1.data));
    }
  });

  test("q4GemmResidual: each token as q4GemvResidual", () => {
    const r = rng(SEED + 3);
    const w = randomQ4(inter, K, r);
    const x = randomF16([M, K], r);
    const residual = randomF16([M, inter], r);
    const y = zeros("f16", [M, inter]);
    cpuKernel(q4GemmResidual)({ x, packed: w.packed, scales: w.scales, residual, y });
    const gemv = cpuKernel(q4GemvResidual);
    for (let m = 0; m < M; m++) {
      const y1 = zeros("f16", [inter]);
      gemv({ x: row(x, m), packed: w.packed, scales: w.scales, residual: row(residual, m), y: y1 });
      expect(Array.from(row(y, m).data), `token ${m}`).toEqual(Array.from(y1.data));
    }
  });
});
