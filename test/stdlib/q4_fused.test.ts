/**
 * The fused q4f16_1 GEMVs against float64 references at small and Llama-2-7B shapes (12288 x 4096
 * QKV, 22016 x 4096 gate+up, 4096 x 11008 down projection with the residual), and against their
 * unfused composition, which they must reproduce bit for bit (fusing changes no rounding).
 */
import { describe, expect, test } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { fromStorage, toNumbers, zeros } from "../../dsl/ndarray.ts";
import { residualAdd, siluMul } from "../../stdlib/elementwise.ts";
import { q4GateUpSilu, q4GemvResidual, q4QkvGemv } from "../../stdlib/q4_fused.ts";
import { q4Gemv } from "../../stdlib/q4_gemv.ts";
import { F16_EPS, SEED, expectWithin, gemvBound, q4MatVec, randomF16, randomQ4, rng } from "./helpers.ts";

const silu = (v: number): number => v / (1 + Math.exp(-v));

function checkQkv(qDim: number, kvDim: number, k: number, boundsCheck: boolean): void {
  const run = cpuKernel(q4QkvGemv, { boundsCheck });
  const r = rng(SEED + qDim + 3 * kvDim + k);
  const w = randomQ4(qDim + 2 * kvDim, k, r);
  const x = randomF16([k], r);
  const q = zeros("f16", [qDim]);
  const kk = zeros("f16", [kvDim]);
  const v = zeros("f16", [kvDim]);
  run({ x, packed: w.packed, scales: w.scales, q, k: kk, v });
  const ref = q4MatVec(w, toNumbers(x));
  const bound = ref.y.map((y, i) => gemvBound(y, ref.abs[i]!, k, F16_EPS));
  const parts: [string, Float64Array, number][] = [
    ["q", toNumbers(q), 0],
    ["k", toNumbers(kk), qDim],
    ["v", toNumbers(v), qDim + kvDim],
  ];
  for (const [name, got, at] of parts)
    expectWithin(
      got,
      ref.y.subarray(at, at + got.length),
      bound.subarray(at, at + got.length),
      `q4QkvGemv ${name} (${qDim}+2x${kvDim})x${k}`,
    );
}

/** Reference for q4GateUpSilu: gate and up rounded to f16 (as the kernel documents), then SiLU * up. */
function checkGateUp(inter: number, k: number, boundsCheck: boolean): void {
  const run = cpuKernel(q4GateUpSilu, { boundsCheck });
  const r = rng(SEED + inter + k);
  const w = randomQ4(2 * inter, k, r);
  const x = randomF16([k], r);
  const out = zeros("f16", [inter]);
  run({ x, packed: w.packed, scales: w.scales, out });
  const ref = q4MatVec(w, toNumbers(x));
  const got = toNumbers(out);
  const expected = new Float64Array(inter);
  const bound = new Float64Array(inter);
  for (let i = 0; i < inter; i++) {
    const g = ref.y[i]!;
    const u = ref.y[inter + i]!;
    expected[i] = silu(g) * u;
    // Errors of gate and up (each within gemvBound) carried through silu(g) * u (|silu'| <= 1.1),
    // then the f16 rounding of the output and f32 rounding inside SiLU.
    const eg = gemvBound(g, ref.abs[i]!, k, F16_EPS);
    const eu = gemvBound(u, ref.abs[inter + i]!, k, F16_EPS);
    bound[i] =
      1.1 * eg * (Math.abs(u) + eu) +
      Math.abs(silu(g)) * eu +
      2 * F16_EPS * Math.abs(expected[i]!) +
      2 ** -24;
  }
  expectWithin(got, expected, bound, `q4GateUpSilu 2x${inter}x${k}`);
}

function checkResidual(n: number, k: number, boundsCheck: boolean): void {
  const run = cpuKernel(q4GemvResidual, { boundsCheck });
  const r = rng(SEED + n + 5 * k);
  const w = randomQ4(n, k, r);
  const x = randomF16([k], r);
  const residual = randomF16([n], r);
  const y = zeros("f16", [n]);
  run({ x, packed: w.packed, scales: w.scales, residual, y });
  const ref = q4MatVec(w, toNumbers(x));
  const res = toNumbers(residual);
  const expected = ref.y.map((v, i) => v + res[i]!);
  const bound = ref.y.map(
    (v, i) => gemvBound(v, ref.abs[i]!, k, F16_EPS) + F16_EPS * Math.abs(expected[i]!) + 2 ** -25,
  );
  expectWithin(toNumbers(y), expected, bound, `q4GemvResidual ${n}x${k}`);
}

describe(`fused q4f16_1 GEMVs on the CPU (seed ${SEED})`, () => {
  test("q4QkvGemv, small shapes with and without GQA", () => {
    checkQkv(32, 32, 64, true); // 4 heads of 8, no GQA
    checkQkv(48, 16, 96, true); // 6 query heads, 2 kv heads
  });

  test("q4GateUpSilu, small shapes", () => {
    checkGateUp(1, 32, true);
    checkGateUp(40, 96, true);
  });

  test("q4GemvResidual, small shapes", () => {
    checkResidual(1, 32, true);
    checkResidual(37, 128, true);
  });

  test("each fusion equals its unfused composition bit for bit", () => {
    const [qDim, kvDim, inter, k] = [24, 8, 20, 64];
    const r = rng(SEED + 99);
    const x = randomF16([k], r);
    const gemv = cpuKernel(q4Gemv);
    const project = (w: ReturnType<typeof randomQ4>) => {
      const y = zeros("f16", [w.n]);
      gemv({ x, packed: w.packed, scales: w.scales, y });
      return y;
    };

    const wqkv = randomQ4(qDim + 2 * kvDim, k, r);
    const [q, kk, v] = [zeros("f16", [qDim]), zeros("f16", [kvDim]), zeros("f16", [kvDim])];
    cpuKernel(q4QkvGemv)({ x, packed: wqkv.packed, scales: wqkv.scales, q, k: kk, v });
    const all = project(wqkv).data as Uint16Array;
    expect([...q.data, ...kk.data, ...v.data]).toEqual(Array.from(all));

    const wgu = randomQ4(2 * inter, k, r);
    const fused = zeros("f16", [inter]);
    cpuKernel(q4GateUpSilu)({ x, packed: wgu.packed, scales: wgu.scales, out: fused });
    const gu = project(wgu).data as Uint16Array;
    const unfused = zeros("f16", [1, inter]);
    cpuKernel(siluMul)({
      gate: fromStorage("f16", [1, inter], gu.slice(0, inter)),
      up: fromStorage("f16", [1, inter], gu.slice(inter)),
      out: unfused,
    });
    expect(Array.from(fused.data)).toEqual(Array.from(unfused.data));

    const wo = randomQ4(inter, k, r);
    const residual = randomF16([inter], r);
    const y = zeros("f16", [inter]);
    cpuKernel(q4GemvResidual)({ x, packed: wo.packed, scales: wo.scales, residual, y });
    const sum = zeros("f16", [1, inter]);
    cpuKernel(residualAdd)({
      a: fromStorage("f16", [1, inter], residual.data),
      b: fromStorage("f16", [1, inter], project(wo).data),
      y: sum,
    });
    expect(Array.from(y.data)).toEqual(Array.from(sum.data));
  });

  test("q4GemvResidual updates the residual stream in place (y aliases residual)", () => {
    const [n, k] = [16, 64];
    const r = rng(SEED + 5);
    const w = randomQ4(n, k, r);
    const x = randomF16([k], r);
    const residual = randomF16([n], r);
    const run = cpuKernel(q4GemvResidual);
    const y = zeros("f16", [n]);
    run({ x, packed: w.packed, scales: w.scales, residual, y });
    run({ x, packed: w.packed, scales: w.scales, residual, y: residual });
    expect(Array.from(residual.data)).toEqual(Array.from(y.data));
  });

  test("q4QkvGemv at Llama-2-7B's 12288 x 4096", () => checkQkv(4096, 4096, 4096, false));
  test("q4GateUpSilu at Llama-2-7B's 22016 x 4096", () => checkGateUp(11008, 4096, false));
  test("q4GemvResidual at Llama-2-7B's 4096 x 11008", () => checkResidual(4096, 11008, false));
});
