/** The several-rows-per-thread GEMVs compute bit for bit what their one-row counterparts compute. */
import { describe, expect, test } from "vitest";
import * as S from "../../stdlib/index.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { zeros, type NDArray } from "../../dsl/ndarray.ts";
import { randomArray, rng } from "../helpers/random.ts";
import { quantizeQ4f16_1 } from "../../llama/quant/q4f16_1.ts";

function weights(n: number, k: number, seed: number) {
  const r = rng(seed);
  const w = new Float32Array(n * k).map(() => r() * 2 - 1);
  const q = quantizeQ4f16_1(w, n, k);
  const packed: NDArray = { dtype: "u32", shape: [n, k / 8], data: q.packed };
  const scales: NDArray = { dtype: "f16", shape: [n, k / 32], data: q.scales };
  return { packed, scales, x: randomArray("f16", [k], r), residual: randomArray("f16", [n], r) };
}

describe("rows-per-thread q4 GEMVs", () => {
  test.each([
    [8, 64],
    [36, 96],
  ])("q4GemvRows4, q4GemvResidualRows4 and q4GemvF32Rows4 equal the one-row kernels (N=%i, K=%i)", (n, k) => {
    const { packed, scales, x, residual } = weights(n, k, n * k);
    const a = zeros("f16", [n]);
    const b = zeros("f16", [n]);
    cpuKernel(S.q4Gemv)({ x, packed, scales, y: a });
    cpuKernel(S.q4GemvRows4)({ x, packed, scales, y: b });
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
    const c = zeros("f16", [n]);
    const d = zeros("f16", [n]);
    cpuKernel(S.q4GemvResidual)({ x, packed, scales, residual, y: c });
    cpuKernel(S.q4GemvResidualRows4)({ x, packed, scales, residual, y: d });
    expect(Array.from(d.data)).toEqual(Array.from(c.data));
    const e = zeros("f32", [n]);
    const f = zeros("f32", [n]);
    cpuKernel(S.q4GemvF32)({ x, packed, scales, y: e });
    cpuKernel(S.q4GemvF32Rows4)({ x, packed, scales, y: f });
    expect(Array.from(f.data)).toEqual(Array.from(e.data));
  });

  test("q4GateUpSiluRows2 equals q4GateUpSilu", () => {
    const inter = 10;
    const { packed, scales, x } = weights(2 * inter, 64, 3);
    const a = zeros("f16", [inter]);
    const b = zeros("f16", [inter]);
    cpuKernel(S.q4GateUpSilu)({ x, packed, scales, out: a });
    cpuKernel(S.q4GateUpSiluRows2)({ x, packed, scales, out: b });
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
  });
});

describe("RMSNorm folded into the GEMV", () => {
  test("q4GemvRows4Rms and q4GateUpSiluRms equal rmsNorm followed by the plain kernels", () => {
    const k = 96;
    const { packed, scales, x } = weights(12, k, 21);
    const wn = randomArray("f16", [k], rng(22));
    const eps = 1e-5;
    const xn = zeros("f16", [1, k]);
    cpuKernel(S.rmsNorm)({ x: { ...x, shape: [1, k] }, w: wn, y: xn, eps });
    const xnFlat = { ...xn, shape: [k] };
    const a = zeros("f16", [12]);
    const b = zeros("f16", [12]);
    cpuKernel(S.q4GemvRows4)({ x: xnFlat, packed, scales, y: a });
    cpuKernel(S.q4GemvRows4Rms)({ x, wn, eps, packed, scales, y: b });
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
    const c = zeros("f16", [6]);
    const d = zeros("f16", [6]);
    cpuKernel(S.q4GateUpSilu)({ x: xnFlat, packed, scales, out: c });
    cpuKernel(S.q4GateUpSiluRms)({ x, wn, eps, packed, scales, out: d });
    expect(Array.from(d.data)).toEqual(Array.from(c.data));
  });
});
